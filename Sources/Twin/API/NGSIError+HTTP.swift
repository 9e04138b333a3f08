import CityKit
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension NGSIError: HTTPResponseError {
    public var status: HTTPResponse.Status { kind.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if kind == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONCoding.data(.object(problemDetails)))))
    }
}

/// Answers every failure under the NGSI-LD routes as ProblemDetails, including framework errors (body too
/// large, unknown route) and unexpected ones (logged, answered as InternalError).
public struct ProblemDetailsMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status == .notFound, response.headers[.contentType] == nil {
                throw NGSIError.notFound("no resource at \(request.uri.path)")
            }
            return response
        } catch let error as NGSIError {
            throw error
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .contentTooLarge: throw NGSIError(.payloadTooLarge, "the request body is larger than allowed")
            case .notFound: throw NGSIError.notFound("no resource at \(request.uri.path)")
            case .methodNotAllowed: throw NGSIError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path)")
            case .badRequest: throw NGSIError.invalid("the request is malformed")
            default: throw NGSIError(.internalError, "the request failed with status \(error.status.code)")
            }
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw NGSIError(.internalError, "the request could not be completed")
        }
    }
}
