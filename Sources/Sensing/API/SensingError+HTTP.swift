import CityKit
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension SensingError: HTTPResponseError {
    public var status: HTTPResponse.Status { name.status }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: JSONCoding.data(json))))
    }
}

/// Answers every failure under `/iot` in the IoT Agent's error format, including the framework's own
/// (body too large, unknown route) and unexpected ones (logged, answered as INTERNAL_ERROR).
public struct SensingErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as SensingError {
            throw error
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .contentTooLarge: throw SensingError(.payloadTooLarge, "the request body is larger than allowed")
            case .notFound: throw SensingError(.notFound, "no resource at \(request.uri.path)")
            case .unauthorized: throw SensingError(.unauthorized, "this needs an API key or a bearer token")
            case .forbidden: throw SensingError(.forbidden, "the caller may not make this change")
            default: throw SensingError(.badRequest, "the request failed with status \(error.status.code)")
            }
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            throw SensingError(.internalError, "the request could not be completed")
        }
    }
}
