import CityKit
import HTTPTypes

/// An NGSI-LD failure, answered as ProblemDetails with the standard error type and status.
public struct NGSIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        case invalidRequest = "InvalidRequest"
        case badRequestData = "BadRequestData"
        case alreadyExists = "AlreadyExists"
        case operationNotSupported = "OperationNotSupported"
        case resourceNotFound = "ResourceNotFound"
        case internalError = "InternalError"
        case tooComplexQuery = "TooComplexQuery"
        case tooManyResults = "TooManyResults"
        case ldContextNotAvailable = "LdContextNotAvailable"
        case noMultiTenantSupport = "NoMultiTenantSupport"
        case nonexistentTenant = "NonexistentTenant"
        case unsupportedMediaType = "UnsupportedMediaType"
        case notAcceptable = "NotAcceptable"
        case unauthorized = "Unauthorized"
        case forbidden = "Forbidden"
        case payloadTooLarge = "PayloadTooLarge"
        case methodNotAllowed = "MethodNotAllowed"

        public var status: HTTPResponse.Status {
            switch self {
            case .invalidRequest, .badRequestData: .badRequest
            case .alreadyExists: .conflict
            case .operationNotSupported: .unprocessableContent
            case .resourceNotFound, .nonexistentTenant: .notFound
            case .internalError: .internalServerError
            case .tooComplexQuery, .tooManyResults, .forbidden: .forbidden
            case .ldContextNotAvailable: .serviceUnavailable
            case .noMultiTenantSupport: .notImplemented
            case .unsupportedMediaType: .unsupportedMediaType
            case .notAcceptable: .notAcceptable
            case .unauthorized: .unauthorized
            case .payloadTooLarge: .contentTooLarge
            case .methodNotAllowed: .methodNotAllowed
            }
        }

        var title: String {
            switch self {
            case .invalidRequest: "The request is malformed"
            case .badRequestData: "The request data is not acceptable"
            case .alreadyExists: "The resource already exists"
            case .operationNotSupported: "The operation is not supported"
            case .resourceNotFound: "The resource was not found"
            case .internalError: "Internal error"
            case .tooComplexQuery: "The query is too complex"
            case .tooManyResults: "Too many results"
            case .ldContextNotAvailable: "The @context is not available"
            case .noMultiTenantSupport: "Tenants are not supported"
            case .nonexistentTenant: "The tenant does not exist"
            case .unsupportedMediaType: "Unsupported media type"
            case .notAcceptable: "Not acceptable"
            case .unauthorized: "Authentication is required"
            case .forbidden: "Not allowed"
            case .payloadTooLarge: "The request body is too large"
            case .methodNotAllowed: "Method not allowed"
            }
        }
    }

    public let kind: Kind
    public let detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    /// The `type` member: the ETSI error URI for standard errors.
    public var typeURI: String {
        switch kind {
        case .unsupportedMediaType, .notAcceptable, .unauthorized, .forbidden, .payloadTooLarge, .methodNotAllowed:
            "https://uri.etsi.org/ngsi-ld/errors/\(kind == .payloadTooLarge ? "InvalidRequest" : kind == .forbidden ? "OperationNotSupported" : kind.rawValue)"
        default:
            "https://uri.etsi.org/ngsi-ld/errors/\(kind.rawValue)"
        }
    }

    public var problemDetails: JSONValueObject {
        ["type": .string(typeURI), "title": .string(kind.title), "detail": .string(detail)]
    }

    public var description: String { "\(kind.rawValue): \(detail)" }

    public static func invalid(_ detail: String) -> NGSIError { NGSIError(.invalidRequest, detail) }
    public static func badData(_ detail: String) -> NGSIError { NGSIError(.badRequestData, detail) }
    public static func notFound(_ detail: String) -> NGSIError { NGSIError(.resourceNotFound, detail) }
}

public typealias JSONValueObject = [String: JSON]
