/// Why a geometry or a geo-query is not acceptable.
public struct GeometryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
