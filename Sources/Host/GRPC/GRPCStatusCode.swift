// gRPC status codes and the trailers the proxy writes when it, not the upstream, ends a call.
//
// The proxy forwards upstream statuses untouched; this file is only for the calls the proxy itself has to answer
// (upstream unreachable, message over the size limit, a non-gRPC request).

import NIOHPACK

/// The canonical gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
public enum GRPCStatusCode: Int, Sendable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }
}

/// A status the proxy answers a call with.
public struct GRPCStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: GRPCStatusCode
    public var message: String

    public init(_ code: GRPCStatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The HEADERS block that ends a call with this status.
    ///
    /// With `trailersOnly` the block also carries `:status` and `content-type`, because no response headers were
    /// sent before it (gRPC's "Trailers-Only" response).
    public func trailers(trailersOnly: Bool) -> HPACKHeaders {
        var headers = HPACKHeaders()
        if trailersOnly {
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: "application/grpc")
        }
        headers.add(name: "grpc-status", value: String(code.rawValue))
        if !message.isEmpty {
            headers.add(name: "grpc-message", value: GRPCStatus.percentEncode(message))
        }
        return headers
    }

    /// Percent-encodes a `grpc-message` value as the gRPC HTTP/2 protocol requires: bytes outside 0x20...0x7E and
    /// `%` itself become `%XX` of their UTF-8 encoding.
    public static func percentEncode(_ message: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(message.utf8.count)
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0F)]))
            }
        }
        return encoded
    }
}
