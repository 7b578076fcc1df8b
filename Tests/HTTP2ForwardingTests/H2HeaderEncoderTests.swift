// The static-table HPACK encoder: what it writes decodes, with NIOHPACK's decoder, to exactly the fields it was
// given, in order, for every representation it uses; and its wire form is the one RFC 7541 names.

import NIOCore
import NIOHPACK
import Testing

@testable import HTTP2Forwarding

@Suite struct H2HeaderEncoderTests {
    private func roundTrip(_ blocks: [HPACKHeaders], decoderTableSize: Int = 4096) throws -> [HPACKHeaders] {
        var encoder = H2HeaderEncoder()
        var decoder = HPACKDecoder(
            allocator: ByteBufferAllocator(), maxDynamicTableSize: decoderTableSize, maxHeaderListSize: 1 << 20)
        return try blocks.map { headers in
            var buffer = ByteBuffer()
            encoder.encode(headers, into: &buffer)
            let decoded = try decoder.decodeHeaders(from: &buffer)
            #expect(buffer.readableBytes == 0)
            return decoded
        }
    }

    private func fields(_ headers: HPACKHeaders) -> [String] {
        headers.map { "\($0.name)=\($0.value)" }
    }

    @Test func requestsResponsesAndTrailersDecodeToWhatWasEncoded() throws {
        let request: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
            ":authority": "frontend:7233", "content-type": "application/grpc", "te": "trailers",
            "user-agent": "grpc-go/1.60.0", "grpc-timeout": "9999998u", "temporal-namespace": "orders",
            "custom-bin": "AAEC", "x-empty": "",
        ]
        let response: HPACKHeaders = [":status": "200", "content-type": "application/grpc+proto", "grpc-encoding": "gzip"]
        let trailers: HPACKHeaders = ["grpc-status": "3", "grpc-message": "namespace \"orders\" not found"]
        let other: HPACKHeaders = [":method": "GET", ":scheme": "https", ":path": "/", ":status": "404", "content-length": "0"]
        let decoded = try roundTrip([request, response, trailers, other, request])
        for (sent, received) in zip([request, response, trailers, other, request], decoded) {
            #expect(fields(received) == fields(sent))
        }
    }

    @Test func longNamesValuesAndIndicesUseTheIntegerContinuation() throws {
        // Lengths and indices past each prefix (4 and 7 bits) need continuation bytes (RFC 7541 5.1).
        let long: HPACKHeaders = [
            "user-agent": String(repeating: "u", count: 127), "content-type": String(repeating: "c", count: 128),
            String(repeating: "n", count: 300): String(repeating: "v", count: 70_000),
        ]
        #expect(fields(try roundTrip([long])[0]) == fields(long))
    }

    @Test func neverIndexedFieldsKeepTheirRepresentation() throws {
        var headers = HPACKHeaders()
        headers.add(name: ":method", value: "POST", indexing: .neverIndexed)
        headers.add(name: "authorization-token", value: "secret", indexing: .neverIndexed)
        headers.add(name: "plain", value: "value")
        var encoder = H2HeaderEncoder()
        var buffer = ByteBuffer()
        encoder.encode(headers, into: &buffer)
        // Size update, then ":method" by name index 2 as never indexed (0001 0010), its value literal.
        #expect(Array(buffer.readableBytesView.prefix(7)) == [0x20, 0x12, 4] + Array("POST".utf8))
        var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
        let decoded = try decoder.decodeHeaders(from: &buffer)
        #expect(decoded.map(\.indexable) == [.neverIndexed, .neverIndexed, .nonIndexable])
        #expect(fields(decoded) == fields(headers))
    }

    @Test func onlyTheFirstBlockSetsTheTableSizeToZeroSoAnyPeerLimitHolds() throws {
        var encoder = H2HeaderEncoder()
        var first = ByteBuffer()
        encoder.encode([":status": "200"], into: &first)
        var second = ByteBuffer()
        encoder.encode([":status": "200"], into: &second)
        #expect(Array(first.readableBytesView) == [0x20, 0x88])
        #expect(Array(second.readableBytesView) == [0x88])
        // A peer that allows no dynamic table at all decodes every block.
        let decoded = try roundTrip([[":status": "200", "grpc-status": "0"], [":status": "200"]], decoderTableSize: 0)
        #expect(decoded.map(fields) == [[":status=200", "grpc-status=0"], [":status=200"]])
    }
}
