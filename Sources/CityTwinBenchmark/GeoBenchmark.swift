import Foundation
import NIOHTTP1

/// The geo-query figures: point entities spread over Shenzhen's extent, queried near random points and
/// within random district-sized polygons.
extension Benchmark {
    /// Longitude and latitude extent the points are spread over (about 92 km × 44 km).
    static let west = 113.75, east = 114.65, south = 22.45, north = 22.85

    func measureGeo(_ load: Load) async throws {
        guard geoEntities > 0 else { return }
        var random = SplitMix64(seed: 2026)
        let batches = geoEntities / batchSize
        let positions = (0..<batches * batchSize).map { _ in
            (Self.west + random.unit() * (Self.east - Self.west), Self.south + random.unit() * (Self.north - Self.south))
        }
        let start = ContinuousClock.now
        try await load.run(count: batches, concurrency: 4) { b in
            let body = "[" + (0..<batchSize).map { i in
                let n = b * batchSize + i
                let (lon, lat) = positions[n]
                return #"{"id":"urn:ngsi-ld:Streetlight:\#(n)","type":"Streetlight","location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[\#(lon),\#(lat)]}}}"#
            }.joined(separator: ",") + "]"
            return (.POST, "/ngsi-ld/v1/entityOperations/upsert", body)
        }
        let rate = Double(batches * batchSize) / (ContinuousClock.now - start).seconds
        say(String(format: "geo: loaded %d point entities:  %9.0f entities/s", batches * batchSize, rate))
        try settle("geo")

        var stolen = StolenCPU()
        let near = try await timedCounts(load) {
            let lon = Self.west + 0.05 + random.unit() * (Self.east - Self.west - 0.1)
            let lat = Self.south + 0.05 + random.unit() * (Self.north - Self.south - 0.1)
            return "/ngsi-ld/v1/entities?type=Streetlight&georel=near%3BmaxDistance%3D%3D500&geometry=Point&coordinates=%5B\(lon),\(lat)%5D&pick=id&limit=1000"
        }
        say(String(format: "geo: near;maxDistance==500:       p50 %.1f ms, p99 %.1f ms (target p99 ≤ 10 ms; %.0f ids each)", percentile(near.ms, 50), percentile(near.ms, 99), near.meanCount) + stolen.note)

        stolen = StolenCPU()
        let within = try await timedCounts(load) {
            let lon = Self.west + 0.05 + random.unit() * (Self.east - Self.west - 0.1)
            let lat = Self.south + 0.05 + random.unit() * (Self.north - Self.south - 0.1)
            // An irregular twelve-sided district, 1.5 to 2 km from its centre.
            var ring = (0..<12).map { k -> String in
                let angle = Double(k) / 12 * 2 * .pi
                let r = 0.015 + random.unit() * 0.005
                return "[\(lon + r * cos(angle) / cos(lat * .pi / 180)),\(lat + r * sin(angle))]"
            }
            ring.append(ring[0])
            let coordinates = "[[\(ring.joined(separator: ","))]]".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            return "/ngsi-ld/v1/entities?type=Streetlight&georel=within&geometry=Polygon&coordinates=\(coordinates)&pick=id&limit=1000"
        }
        say(String(format: "geo: within a district polygon:   p50 %.1f ms, p99 %.1f ms (target p99 ≤ 50 ms; %.0f ids each, at most 1000)", percentile(within.ms, 50), percentile(within.ms, 99), within.meanCount) + stolen.note)
    }

    /// `queries` timed GETs of the paths `next` makes, after 20 uncounted ones that warm the server's and the
    /// database's caches: latencies (until the whole answer has arrived) and the mean answer length.
    func timedCounts(_ load: Load, _ next: () -> String) async throws -> (ms: [Double], meanCount: Double) {
        var ms: [Double] = []
        var total = 0
        for round in 0..<(queries + 20) {
            let path = next()
            // Timed until the whole answer has arrived, as the other latencies are; counted after.
            let t = ContinuousClock.now
            let body = try await load.fetch(path)
            let elapsed = (ContinuousClock.now - t).seconds * 1000
            let n = try Load.count(body, of: path)
            guard round >= 20 else { continue }
            total += n
            ms.append(elapsed)
        }
        return (ms, Double(total) / Double(queries))
    }
}

func percentile(_ values: [Double], _ p: Int) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, sorted.count * p / 100)]
}

/// A small deterministic generator, so that every backend gets the same points and queries.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
