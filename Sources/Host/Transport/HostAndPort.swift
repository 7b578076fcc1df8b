// Parsing of the `host:port` strings the configuration uses for listeners and upstreams.

/// A `host:port` address as written in the configuration.
public struct HostAndPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP literal, without IPv6 brackets; empty means "all interfaces" for a listener.
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `:port` or `[v6]:port`; nil when the text is not of that shape.
    public init?(parsing text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (0...65535).contains(port) else { return nil }
            self.init(host: host, port: port)
            return
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.contains(":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
