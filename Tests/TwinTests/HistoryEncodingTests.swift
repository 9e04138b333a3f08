import CityKit
import Testing

@testable import Twin

@Suite struct HistoryEncodingTests {
    @Test func anInstanceKeepsWhatItSaysWithoutItsTimes() throws {
        // given an instance with a number, its times, a datasetId and a sub-attribute stamped with times
        let instance: [String: JSON] = [
            "type": "Property", "value": .double(36.6), "unitCode": "CEL", "observedAt": "2026-11-25T02:00:00.000Z",
            "datasetId": "urn:ngsi-ld:Dataset:a", "createdAt": "2026-11-25T02:00:01.000Z", "modifiedAt": "2026-11-25T02:00:01.000Z",
            "accuracy": .object(["type": "Property", "value": .double(0.5), "createdAt": "2026-11-25T02:00:01.000Z"]),
        ]
        // when it is encoded for a history row
        let (num, body) = History.encode(instance)
        // then the number has its own column and the body keeps the rest, without times, datasetId or the default type
        #expect(num == 36.6)
        let rest = try #require(body.map { try JSONCoding.parse($0).objectValue })
        #expect(rest == ["unitCode": "CEL", "accuracy": .object(["type": "Property", "value": .double(0.5)])])
    }

    @Test func nonNumbersAndHugeIntegersStayInTheBody() throws {
        // a text value, a relationship, and an integer beyond what a double holds exactly
        #expect(History.encode(["type": "Property", "value": "福田区"]).1 == #"{"value":"福田区"}"#)
        #expect(History.encode(["type": "Relationship", "object": "urn:ngsi-ld:Device:1"]).0 == nil)
        let huge = History.encode(["type": "Property", "value": .integer(1 << 60)])
        #expect(huge.0 == nil && huge.1 == #"{"value":1152921504606846976}"#)
        // a bare number leaves nothing for the body
        let bare = History.encode(["type": "Property", "value": .integer(7)])
        #expect(bare.0 == 7 && bare.1 == nil)
    }
}
