import Foundation
import CityKit
import HTTPTypes
import Hummingbird
import Twin

/// Resolves the caller from `X-API-Key` / `Authorization: ApiKey …` or `Authorization: Bearer <JWT>`.
///
/// No credentials: the anonymous principal (routes decide what it may do). Bad credentials: 401.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let keys: APIKeyStore
    let tokens: TokenVerifier?
    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let key = request.headers[Self.apiKeyHeader] ?? request.headers[.authorization].flatMap({ $0.hasPrefix("ApiKey ") ? String($0.dropFirst(7)) : nil }) {
            guard let principal = try await keys.principal(forKey: key.trimmingCharacters(in: .whitespaces)) else {
                throw NGSIError(.unauthorized, "the API key is not valid")
            }
            context.principal = principal
        } else if let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") {
            guard let tokens else { throw NGSIError(.unauthorized, "bearer tokens are not enabled on this server") }
            do {
                context.principal = try await tokens.principal(for: String(auth.dropFirst(7)))
            } catch {
                throw NGSIError(.unauthorized, "the bearer token is not valid")
            }
        }
        return try await next(request, context)
    }
}
