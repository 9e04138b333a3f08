import CityKit
import Foundation
import JWTKit

/// Verifies bearer tokens (JWT, HS256) and reads the principal from their claims:
/// `sub` (who), `roles` (array of role names), `department` (optional), `exp` (required).
public struct TokenVerifier: Sendable {
    let keys: JWTKeyCollection

    public init(secret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var roles: [String]
        var department: String?

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    public func principal(for token: String) async throws -> Principal {
        let claims = try await keys.verify(token, as: Claims.self)
        var roles = Set<Role>()
        for name in claims.roles {
            guard let role = Role(rawValue: name) else { throw IdentityError.unknownRole(name) }
            roles.insert(role)
        }
        return Principal(id: claims.sub.value, kind: .person, roles: roles, department: claims.department)
    }

    /// Signs a token (for the `token` admin command and tests).
    public func sign(subject: String, roles: Set<Role>, department: String?, lifetime: TimeInterval) async throws -> String {
        let claims = Claims(sub: .init(value: subject), exp: .init(value: Date().addingTimeInterval(lifetime)),
                            roles: roles.map(\.rawValue).sorted(), department: department)
        return try await keys.sign(claims)
    }
}
