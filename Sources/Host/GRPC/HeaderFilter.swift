// Which headers cross the proxy. gRPC metadata is end-to-end and passes untouched; only hop-by-hop headers, which
// describe one connection and not the call, stop here.

import NIOHPACK

enum HeaderFilter {
    private static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// `headers` without hop-by-hop fields. `te` survives only as `te: trailers`, which gRPC requires.
    /// Returns the original value when nothing is removed, which is the common case.
    static func forwardable(_ headers: HPACKHeaders) -> HPACKHeaders {
        let needsFiltering = headers.contains { name, value, _ in
            hopByHop.contains(name) || (name == "te" && value != "trailers")
        }
        guard needsFiltering else { return headers }
        var filtered = HPACKHeaders()
        for (name, value, indexing) in headers {
            if hopByHop.contains(name) || (name == "te" && value != "trailers") { continue }
            filtered.add(name: name, value: value, indexing: indexing)
        }
        return filtered
    }
}
