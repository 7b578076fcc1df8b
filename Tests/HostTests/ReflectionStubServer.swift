// A minimal gRPC reflection server on loopback for the schema tests: it answers list_services and
// file_containing_symbol from a fixed descriptor set (every file in one answer), over real HTTP/2, so that the
// reflection client and the schema source are tested over real sockets without a Temporal server.

import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import SwiftProtobuf

@testable import Host

final class ReflectionStubServer {
    private let group: EventLoopGroup
    private let files: [[UInt8]]
    private let services: [String]
    private var channel: Channel?

    /// Serves the services and files of the descriptor set `descriptorSetBytes`.
    init(group: EventLoopGroup, descriptorSetBytes: [UInt8]) throws {
        self.group = group
        let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: descriptorSetBytes)
        files = try set.file.map { try $0.serializedBytes() }
        services = set.file.flatMap { file in file.service.map { "\(file.package).\($0.name)" } }
    }

    /// Listens on 127.0.0.1:`port` (0: any free port) and returns the port.
    func start(port: Int = 0) throws -> Int {
        let files = files
        let services = services
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
                    try channel.pipeline.syncOperations.addHandler(StubReflectionHandler(files: files, services: services))
                }
            }
            .bind(host: "127.0.0.1", port: port).wait()
        self.channel = channel
        return channel.localAddress!.port!
    }

    func stop() throws {
        try channel?.close().wait()
    }
}

/// Answers every reflection request of every stream on one connection.
private final class StubReflectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let files: [[UInt8]]
    let services: [String]
    private var received: [HTTP2StreamID: ByteBuffer] = [:]

    init(files: [[UInt8]], services: [String]) {
        self.files = files
        self.services = services
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers:
            let headers: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
            context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .headers(.init(headers: headers)))), promise: nil)
        case .data(let payload):
            guard case .byteBuffer(var bytes) = payload.data else { return }
            var buffer = received[frame.streamID] ?? ByteBuffer()
            buffer.writeBuffer(&bytes)
            while let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self),
                  buffer.readableBytes >= 5 + Int(length) {
                buffer.moveReaderIndex(forwardBy: 5)
                answer(buffer.readBytes(length: Int(length))!, on: frame.streamID, context: context)
            }
            received[frame.streamID] = buffer
            context.flush()
        default:
            break
        }
    }

    private func answer(_ request: [UInt8], on streamID: HTTP2StreamID, context: ChannelHandlerContext) {
        var reader = ReflectionWireReader(request[...])
        let asked = (try? reader.nextField())??.number
        let response: [UInt8]
        switch asked {
        case 7: response = SchemaTestSupport.servicesResponse(services)
        case 4: response = SchemaTestSupport.filesResponse(files)
        default: response = SchemaTestSupport.errorResponse(code: 5, message: "not served by the stub")
        }
        var buffer = context.channel.allocator.buffer(capacity: response.count + 5)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(response.count))
        buffer.writeBytes(response)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: streamID, payload: .data(.init(data: .byteBuffer(buffer))))), promise: nil)
    }
}
