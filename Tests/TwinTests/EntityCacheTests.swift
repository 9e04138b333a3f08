import Foundation
import CityKit
import Testing

@testable import Twin

@Suite struct EntityCacheTests {
    func entity(_ id: String) -> Entity { Entity(id: id, types: ["https://uri.etsi.org/ngsi-ld/default-context/Streetlight"]) }

    @Test func forgetsTheOldestPastItsCapacity() {
        // given a cache of three
        let cache = EntityCache(capacity: 3)
        // when five are written, the first written again before the last two
        cache.store([("a", entity("a")), ("b", entity("b")), ("c", entity("c"))], tenant: .default)
        cache.store([("a", entity("a"))], tenant: .default)
        cache.store([("d", entity("d")), ("e", entity("e"))], tenant: .default)
        // then the two written longest ago are gone and the rewritten one stays
        #expect(cache.entities(["a", "b", "c", "d", "e"], tenant: .default).keys.sorted() == ["a", "d", "e"])
        #expect(cache.sizes.entries == 3)
    }

    @Test func staysBoundedUnderRewritesAndForgetsDeletions() {
        // given a cache of 100 holding 50 entities rewritten 10,000 times
        let cache = EntityCache(capacity: 100)
        for round in 0..<200 {
            cache.store((0..<50).map { ("e\($0)", entity("e\($0)")) }, tenant: .default)
            #expect(cache.sizes.places <= 300, "round \(round)")
        }
        #expect(cache.sizes.entries == 50)
        // when one is deleted (nil), then it is not answered, and other tenants never see them
        cache.store([("e7", nil)], tenant: .default)
        #expect(cache.entity("e7", tenant: .default) == nil)
        #expect(cache.entity("e8", tenant: .default)?.id == "e8")
        #expect(cache.entity("e8", tenant: Tenant("futian")) == nil)
    }

    @Test func storedStatesAreWhatTheirJSONReadsBack() throws {
        // given instances with integral and fractional reals, nested in values and sub-attributes, and none
        let attributes: [String: [[String: JSON]]] = [
            "temperature": [["type": "Property", "value": .double(21.5), "unitCode": "CEL"]],
            "count": [["type": "Property", "value": .double(12.0)]],
            "location": [["type": "GeoProperty", "value": .object(["type": "Point", "coordinates": .array([.double(114.0), .double(22.55)])])]],
            "speed": [["type": "Property", "value": .integer(3), "accuracy": .object(["type": "Property", "value": .double(2.0)])]],
            "name": [["type": "Property", "value": "福田区"]],
        ]
        let entity = Entity(id: "urn:ngsi-ld:Road:1", types: ["Road"], attributes: attributes)
        // when it is put in the form the cache keeps
        let stored = EntityCache.stored(entity, now: Date(timeIntervalSince1970: 1_800_000_000))
        // then every attribute is what parsing its written JSON gives, integral reals as integers
        let readBack = Entity.attributes(from: try JSONCoding.parse(JSONCoding.string(entity.attributesJSON)))
        #expect(stored.attributes == readBack)
        #expect(stored.attributes["count"]?[0]["value"] == .integer(12))
        #expect(stored.attributes["temperature"]?[0]["value"] == .double(21.5))
        #expect(JSONCoding.isAsWritten(.array([.double(21.5), .integer(2), "x"])))
        #expect(!JSONCoding.isAsWritten(.object(["a": .array([.double(2.0)])])))
        #expect(!JSONCoding.isAsWritten(.double(.nan)))
    }
}
