// Which headers cross the proxy. gRPC metadata is end-to-end and passes untouched; only hop-by-hop headers, which
// describe one connection and not the call, stop here. The engine already refuses a received block that holds one
// (RFC 9113 8.2.2), so this is a second line for blocks that did not come from the network as they are; it costs a
// length comparison per field.

import HTTP2Forwarding
import NIOHPACK

enum HeaderFilter {
    /// `headers` without hop-by-hop fields. `te` survives only as `te: trailers`, which gRPC requires.
    /// Returns the original value when nothing is removed, which is the common case.
    static func forwardable(_ headers: HPACKHeaders) -> HPACKHeaders {
        let needsFiltering = headers.contains { name, value, _ in
            H2HeaderValidation.isConnectionSpecific(name: name, value: value)
        }
        guard needsFiltering else { return headers }
        var filtered = HPACKHeaders()
        for (name, value, indexing) in headers {
            if H2HeaderValidation.isConnectionSpecific(name: name, value: value) { continue }
            filtered.add(name: name, value: value, indexing: indexing)
        }
        return filtered
    }
}
