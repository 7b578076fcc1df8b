// MessageFile: reads a message body from a file for `s2s-bench load --request-file` and
// `s2s-bench echo-server --response-file`: a serialized protobuf message, sent as it is inside one gRPC message.

import ArgumentParser
import Foundation

/// A message body stored in a file.
enum MessageFile {
    /// The largest message file the tools accept; far above the benchmark's 1 MiB replication batch.
    static let maximumBytes = 64 << 20

    /// The bytes of the file at `path`; a file that cannot be read or is too large is a usage error.
    static func body(atPath path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read '\(path)'")
        }
        guard data.count <= Self.maximumBytes else {
            throw ValidationError(
                "'\(path)' has \(data.count) bytes; message files of more than 64 MiB are not supported")
        }
        return [UInt8](data)
    }
}
