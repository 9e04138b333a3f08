import CPROJ

/// Distances on the WGS 84 ellipsoid, by PROJ's implementation of Karney's geodesic algorithms.
public enum Geodesic {
    private static let wgs84: geod_geodesic = {
        var g = geod_geodesic()
        geod_init(&g, 6_378_137, 1 / 298.257223563)
        return g
    }()

    /// The shortest distance in metres between two positions along the ellipsoid.
    public static func distance(_ a: Position, _ b: Position) -> Double {
        var g = wgs84
        var metres = 0.0
        geod_inverse(&g, a.latitude, a.longitude, b.latitude, b.longitude, &metres, nil, nil)
        return metres
    }
}
