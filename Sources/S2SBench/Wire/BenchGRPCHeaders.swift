// BenchGRPCHeaders: the few gRPC header blocks the benchmark's echo server and load generator exchange, built once
// and reused for every call, plus reading `grpc-status` back. Nothing here knows about sockets or timing.

import NIOHPACK

/// The methods of the benchmark's echo service, `bench.Echo`.
enum BenchEchoMethod: String, Sendable {
    /// One request message, answered by the same message.
    case unary = "/bench.Echo/Unary"
    /// Bidirectional stream: each request message is echoed as it arrives.
    case stream = "/bench.Echo/Stream"
}

/// Header blocks of the benchmark's gRPC calls.
enum BenchGRPCHeaders {
    /// gRPC status code OK.
    static let statusOK = 0
    /// gRPC status code UNIMPLEMENTED, returned for unknown methods.
    static let statusUnimplemented = 12

    /// Request headers of a call to the method at `path` (`/package.Service/Method`) on the server known as
    /// `authority` (`host:port`), followed by the custom `metadata` (lower-case names), in order.
    static func request(
        path: String,
        authority: String,
        metadata: [(name: String, value: String)] = []
    ) -> HPACKHeaders {
        var headers: HPACKHeaders = [
            ":method": "POST",
            ":scheme": "http",
            ":path": path,
            ":authority": authority,
            "content-type": "application/grpc",
            "te": "trailers",
        ]
        for entry in metadata {
            headers.add(name: entry.name, value: entry.value)
        }
        return headers
    }

    /// Response headers that open a successful gRPC response.
    static let responseStart: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]

    /// Trailers that close a successful gRPC response.
    static let okTrailers: HPACKHeaders = ["grpc-status": "0"]

    /// A trailers-only successful response: a call that ends before any response message.
    static let okTrailersOnly: HPACKHeaders = [":status": "200", "content-type": "application/grpc", "grpc-status": "0"]

    /// A trailers-only response (headers and status in one block) telling the caller the method does not exist.
    static func unimplemented(path: String) -> HPACKHeaders {
        [
            ":status": "200",
            "content-type": "application/grpc",
            "grpc-status": String(Self.statusUnimplemented),
            "grpc-message": "unknown method \(path)",
        ]
    }

    /// A plain HTTP response (415 Unsupported Media Type) for requests that are not gRPC at all.
    static let notGRPC: HPACKHeaders = [":status": "415"]

    /// True when `headers` describe a gRPC request: a POST whose content type is `application/grpc` or
    /// `application/grpc+<codec>`.
    static func isGRPCRequest(_ headers: HPACKHeaders) -> Bool {
        guard headers.first(name: ":method") == "POST", let contentType = headers.first(name: "content-type") else {
            return false
        }
        return contentType == "application/grpc" || contentType.hasPrefix("application/grpc+")
            || contentType.hasPrefix("application/grpc;")
    }

    /// The `grpc-status` a header block carries, or nil when it carries none (response headers, not trailers).
    static func status(in headers: HPACKHeaders) -> Int? {
        headers.first(name: "grpc-status").flatMap { Int($0) }
    }
}
