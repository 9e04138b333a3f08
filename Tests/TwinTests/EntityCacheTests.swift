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
}
