import Foundation

/// An isolated store of the twin, selected by the `NGSILD-Tenant` header; the default tenant has an empty name.
public struct Tenant: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public init(_ name: String) { self.name = name }
    public static let `default` = Tenant("")
    public var isDefault: Bool { name.isEmpty }
    public var description: String { name.isEmpty ? "(default)" : name }

    /// Tenant names: letters, digits, `_`, `-`, `.`, at most 64 characters.
    public static func validate(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0) }
    }
}
