import CityKit
import Foundation
import Testing

@Suite struct JSONParsingTests {
    @Test func roundTripsChineseAndNumbers() throws {
        let json = try JSONCoding.parse(#"{"名称":"福田站","n":20,"x":1.5,"big":9007199254740993,"e":"\u00e9\ud83d\ude00"}"#)
        #expect(json["名称"] == "福田站")
        #expect(json["n"] == .integer(20))
        #expect(json["x"] == .double(1.5))
        #expect(json["big"] == .integer(9_007_199_254_740_993))
        #expect(json["e"] == .string("é😀"))
        #expect(try JSONCoding.parse(JSONCoding.data(json)) == json)
    }

    @Test func refusesHostileBodies() {
        let bad: [Data] = [
            Data(String(repeating: "[", count: 100_000).utf8),
            Data("1e400".utf8),
            Data([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D]),  // invalid UTF-8 in a string
            Data(#"{"a":"\ud800"}"#.utf8),
            Data(#"{"a":1,}"#.utf8),
            Data("{} trailing".utf8),
            Data(),
        ]
        for data in bad {
            #expect(throws: JSONCoding.ParseError.self) { try JSONCoding.parse(data) }
        }
    }
}

@Suite struct TimestampTests {
    @Test func formatsAndParsesUTCWithMilliseconds() {
        let date = Date(timeIntervalSince1970: 1_795_572_000.123)
        #expect(Timestamp.string(date) == "2026-11-25T02:00:00.123Z")
        #expect(Timestamp.string(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(abs(Timestamp.parse("2026-11-25T02:00:00.123Z")!.timeIntervalSince1970 - 1_795_572_000.123) < 0.0005)
        #expect(Timestamp.parse("2026-11-25T02:00:00Z")?.timeIntervalSince1970 == 1_795_572_000)
        #expect(Timestamp.parse("2026-11-25T10:00:00+08:00")?.timeIntervalSince1970 == 1_795_572_000)
        #expect(Timestamp.parse("2026-02-30T00:00:00Z") == nil)
        #expect(Timestamp.parse("yesterday") == nil)
    }
}
