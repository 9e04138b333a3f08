import CityKit
import HTTPTypes

/// A failure of the device API, in the IoT Agent's own error format: `{"name": …, "message": …}`.
public struct SensingError: Error, Sendable, CustomStringConvertible {
    public enum Name: String, Sendable {
        case wrongSyntax = "WRONG_SYNTAX"
        case badRequest = "BAD_REQUEST"
        case notFound = "NOT_FOUND"
        case deviceNotFound = "DEVICE_NOT_FOUND"
        case groupNotFound = "DEVICE_GROUP_NOT_FOUND"
        case duplicateDevice = "DUPLICATE_DEVICE_ID"
        case duplicateGroup = "DUPLICATE_GROUP"
        case unauthorized = "UNAUTHORIZED"
        case forbidden = "FORBIDDEN"
        case payloadTooLarge = "PAYLOAD_TOO_LARGE"
        case unsupportedMediaType = "UNSUPPORTED_CONTENT_TYPE"
        case internalError = "INTERNAL_ERROR"

        public var status: HTTPResponse.Status {
            switch self {
            case .wrongSyntax, .badRequest: .badRequest
            case .notFound, .deviceNotFound, .groupNotFound: .notFound
            case .duplicateDevice, .duplicateGroup: .conflict
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .payloadTooLarge: .contentTooLarge
            case .unsupportedMediaType: .unsupportedMediaType
            case .internalError: .internalServerError
            }
        }
    }

    public let name: Name
    public let message: String

    public init(_ name: Name, _ message: String) {
        self.name = name
        self.message = message
    }

    public var description: String { "\(name.rawValue): \(message)" }

    public var json: JSON { ["name": .string(name.rawValue), "message": .string(message)] }
}
