import Foundation

/// NGSI-LD's `georel`: how an entity's geometry must relate to the query geometry.
public enum SpatialRelation: Sendable, Equatable {
    /// Distance in metres on the earth at most `maxDistance` and at least `minDistance`.
    case near(maxDistance: Double?, minDistance: Double?)
    /// The entity's geometry lies within the query geometry.
    case within
    /// The entity's geometry contains the query geometry.
    case contains
    case intersects, disjoint, equals, overlaps

    /// Parses `near;maxDistance==500`, `near;minDistance==10;maxDistance==500`, `within`, ….
    public init(georel: String) throws(GeometryError) {
        let parts = georel.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        switch parts[0] {
        case "near":
            var maxDistance: Double?
            var minDistance: Double?
            for modifier in parts.dropFirst() {
                let pair = modifier.components(separatedBy: "==")
                guard pair.count == 2, let metres = Double(pair[1]), metres.isFinite, metres >= 0 else {
                    throw GeometryError("near takes maxDistance==METRES and/or minDistance==METRES, not \(modifier)")
                }
                switch pair[0] {
                case "maxDistance": maxDistance = metres
                case "minDistance": minDistance = metres
                default: throw GeometryError("near takes maxDistance or minDistance, not \(pair[0])")
                }
            }
            guard maxDistance != nil || minDistance != nil else { throw GeometryError("near needs maxDistance or minDistance") }
            self = .near(maxDistance: maxDistance, minDistance: minDistance)
        case "within", "contains", "intersects", "disjoint", "equals", "overlaps":
            guard parts.count == 1 else { throw GeometryError("\(parts[0]) takes no modifiers") }
            switch parts[0] {
            case "within": self = .within
            case "contains": self = .contains
            case "intersects": self = .intersects
            case "disjoint": self = .disjoint
            case "equals": self = .equals
            default: self = .overlaps
            }
        default:
            throw GeometryError("\(parts[0]) is not a georel (near, within, contains, intersects, disjoint, equals, overlaps)")
        }
    }

    /// The canonical text, as `init(georel:)` reads it.
    public var text: String {
        switch self {
        case .near(let maxDistance, let minDistance):
            "near" + (maxDistance.map { ";maxDistance==\($0)" } ?? "") + (minDistance.map { ";minDistance==\($0)" } ?? "")
        case .within: "within"
        case .contains: "contains"
        case .intersects: "intersects"
        case .disjoint: "disjoint"
        case .equals: "equals"
        case .overlaps: "overlaps"
        }
    }
}
