import Foundation

/// Who is acting: a system with an API key or a person with a bearer token.
public struct Principal: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case system, person, anonymous }

    public let id: String
    public let kind: Kind
    public let roles: Set<Role>
    /// The department a person or system acts for, if any (departments act for themselves only).
    public let department: String?

    public init(id: String, kind: Kind, roles: Set<Role>, department: String? = nil) {
        self.id = id
        self.kind = kind
        self.roles = roles
        self.department = department
    }

    public static let anonymous = Principal(id: "anonymous", kind: .anonymous, roles: [])

    public func has(_ role: Role) -> Bool { roles.contains(role) || roles.contains(.administrator) }

    /// Whether this principal may change the twin's state.
    public var canWrite: Bool { !roles.intersection(Role.writers).isEmpty }
}

/// The roles people and systems hold in the city's work.
public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
    case citizen
    /// 监督员
    case inspector
    /// 派遣员
    case dispatcher
    /// 部门处置人员
    case handler
    case supervisor
    /// 数据管理员
    case dataSteward = "data-steward"
    /// A device or system feeding the twin.
    case system
    case administrator

    /// Roles that may write to the twin.
    public static let writers: Set<Role> = [.system, .inspector, .dispatcher, .handler, .supervisor, .dataSteward, .administrator]

    /// Parses a comma-separated list of role names; unknown names are an error.
    public static func parseList(_ text: String) throws(IdentityError) -> Set<Role> {
        var roles = Set<Role>()
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let role = Role(rawValue: name) else { throw .unknownRole(name) }
            roles.insert(role)
        }
        return roles
    }
}

public enum IdentityError: Error, Sendable, Equatable {
    case unknownRole(String)
    case invalidCredentials(String)
    case forbidden(String)
}
