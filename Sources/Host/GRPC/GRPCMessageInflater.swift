// Inflates gRPC messages compressed with `gzip` or `deflate` (the `grpc-encoding` of their direction), so that
// plugins read the protobuf bytes and never the compressed ones. Real Temporal traffic is compressed: the Temporal
// SDKs send gzip requests and the server answers in kind.
//
// The output is bounded by `limits.maxMessageBytes`, so a small compressed message cannot make the proxy hold an
// unbounded amount of memory (a decompression bomb ends the call instead).

import CZlib
import NIOCore

enum GRPCMessageInflater {
    enum Failure: Error, Equatable {
        /// The inflated message would exceed the limit.
        case tooLarge(limit: Int)
        /// The bytes are not valid for the encoding.
        case corrupt(String)
    }

    /// Whether `encoding` (a `grpc-encoding` value) is one this proxy can inflate.
    static func canInflate(_ encoding: String?) -> Bool {
        encoding == "gzip" || encoding == "deflate"
    }

    /// The inflated payload of `payload` (without its gRPC prefix), at most `limit` bytes.
    static func inflate(_ payload: ByteBuffer, limit: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(Failure) -> ByteBuffer {
        var stream = z_stream()
        // 15 + 32: the largest window, and zlib detects a gzip or a zlib header by itself.
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output = allocator.buffer(capacity: min(limit, max(256, payload.readableBytes * 4)))
        var result: Failure?
        payload.withUnsafeReadableBytes { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                if output.writableBytes == 0 {
                    guard output.capacity < limit else {
                        result = .tooLarge(limit: limit)
                        return
                    }
                    output.reserveCapacity(min(limit, output.capacity * 2))
                }
                let room = min(output.writableBytes, limit - output.readableBytes)
                if room == 0 {
                    // Full at the limit: anything more is too much.
                    var probe: UInt8 = 0
                    let status = withUnsafeMutablePointer(to: &probe) { pointer -> Int32 in
                        stream.next_out = pointer
                        stream.avail_out = 1
                        return CZlib.inflate(&stream, Z_NO_FLUSH)
                    }
                    if status == Z_STREAM_END && stream.avail_out == 1 { return }
                    result = .tooLarge(limit: limit)
                    return
                }
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { space in
                    stream.next_out = space.bindMemory(to: Bytef.self).baseAddress
                    stream.avail_out = uInt(min(space.count, room))
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return min(space.count, room) - Int(stream.avail_out)
                }
                switch status {
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_in == 0:
                    result = .corrupt("the compressed message is truncated")
                    return
                case Z_BUF_ERROR:
                    continue
                default:
                    result = .corrupt(stream.msg.map { String(cString: $0) } ?? "zlib error \(status)")
                    return
                }
            }
        }
        if let result { throw result }
        return output
    }
}
