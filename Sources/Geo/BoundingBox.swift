import Foundation

/// A longitude/latitude box.
public struct BoundingBox: Sendable, Equatable {
    public var minLongitude: Double
    public var minLatitude: Double
    public var maxLongitude: Double
    public var maxLatitude: Double

    public init(minLongitude: Double, minLatitude: Double, maxLongitude: Double, maxLatitude: Double) {
        self.minLongitude = minLongitude
        self.minLatitude = minLatitude
        self.maxLongitude = maxLongitude
        self.maxLatitude = maxLatitude
    }

    public init?(covering positions: [Position]) {
        guard let first = positions.first else { return nil }
        self.init(minLongitude: first.longitude, minLatitude: first.latitude, maxLongitude: first.longitude, maxLatitude: first.latitude)
        for p in positions.dropFirst() {
            minLongitude = Swift.min(minLongitude, p.longitude)
            maxLongitude = Swift.max(maxLongitude, p.longitude)
            minLatitude = Swift.min(minLatitude, p.latitude)
            maxLatitude = Swift.max(maxLatitude, p.latitude)
        }
    }

    /// The box grown by at least `metres` on every side (on the WGS 84 ellipsoid, with a margin).
    public func expanded(byMetres metres: Double) -> BoundingBox {
        // A degree of latitude is at least 110,574 m; a degree of longitude at latitude φ at least
        // 111,319 m × cos φ (slightly less on the ellipsoid, hence the 1 % margin).
        let dLat = metres / 110_574 * 1.01
        let minLat = Swift.max(-90, minLatitude - dLat)
        let maxLat = Swift.min(90, maxLatitude + dLat)
        let widest = Swift.max(abs(minLat), abs(maxLat))
        let cosine = cos(widest * .pi / 180)
        guard cosine > 1e-6, metres / (111_319 * cosine) * 1.01 < 180 else {
            return BoundingBox(minLongitude: -180, minLatitude: minLat, maxLongitude: 180, maxLatitude: maxLat)
        }
        let dLon = metres / (111_319 * cosine) * 1.01
        return BoundingBox(
            minLongitude: Swift.max(-180, minLongitude - dLon), minLatitude: minLat,
            maxLongitude: Swift.min(180, maxLongitude + dLon), maxLatitude: maxLat)
    }
}
