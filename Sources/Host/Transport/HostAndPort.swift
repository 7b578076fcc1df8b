// The `host:port` strings of the configuration file, as the Go proxy passes them to net.Listen / net.Dial.
//
// Owns `HostAndPort`: parsing with a message that says how to write the address correctly, and deciding
// whether two listen addresses would collide. It resolves no names and opens no sockets.

/// A parsed `host:port`: the host may be empty (all interfaces, as in `:7233`), a name, an IPv4 address or a
/// bracketed IPv6 address; the port is a number from 0 to 65535.
public struct HostAndPort: Hashable, Sendable, CustomStringConvertible {
    /// The host without IPv6 brackets; empty means every interface.
    public let host: String
    /// 0 asks the system for a free port.
    public let port: Int

    /// Why a string is not a usable `host:port`, phrased to follow the offending value.
    struct Problem: Error, Equatable {
        let message: String
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; nil when it is not a usable `host:port`.
    public init?(parsing text: String) {
        guard let parsed = try? HostAndPort(validating: text) else { return nil }
        self = parsed
    }

    /// `host:port`, with brackets around an IPv6 host.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `text`, or throws a problem that says how to write it.
    init(validating text: String) throws(Problem) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let closing = text.firstIndex(of: "]") else {
                throw Problem(message: "\"\(text)\" has no closing \"]\" after its IPv6 address")
            }
            hostPart = text[text.index(after: text.startIndex)..<closing]
            let rest = text[text.index(after: closing)...]
            guard rest.hasPrefix(":") else {
                throw Problem(message: "\"\(text)\" has no port; write it as [ipv6]:port, e.g. \"[::1]:7233\"")
            }
            portPart = rest.dropFirst()
            guard Self.isIPv6Literal(hostPart) else {
                throw Problem(message: "\"\(hostPart)\" in \"\(text)\" is not an IPv6 address")
            }
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw Problem(message: "\"\(text)\" has no port; write it as host:port, e.g. \"\(text):7233\"")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw Problem(message: "IPv6 addresses need brackets: write \"[\(hostPart)]:\(portPart)\"")
            }
            if let problem = Self.hostNameProblem(hostPart) {
                throw Problem(message: "host \"\(hostPart)\" in \"\(text)\" \(problem)")
            }
        }
        guard !portPart.isEmpty, portPart.allSatisfy(\.isASCIIDigit), let port = Int(portPart), port <= 65535 else {
            throw Problem(message: "port \"\(portPart)\" in \"\(text)\" is not a number from 0 to 65535")
        }
        host = String(hostPart)
        self.port = port
    }

    /// Whether listening on both addresses at once would fail because they claim the same port on a shared
    /// interface: the same host, or a wildcard host (`""`, `::`, or `0.0.0.0` against anything but IPv6).
    /// Port 0 never collides, since the system picks a different free port for each listener.
    func collides(with other: HostAndPort) -> Bool {
        guard port == other.port, port != 0 else { return false }
        if host.lowercased() == other.host.lowercased() { return true }
        if isAnyInterface || other.isAnyInterface { return true }
        if host == "0.0.0.0" { return !Self.isIPv6Literal(Substring(other.host)) }
        if other.host == "0.0.0.0" { return !Self.isIPv6Literal(Substring(host)) }
        return false
    }

    /// Every interface of both IP versions.
    private var isAnyInterface: Bool {
        host.isEmpty || host == "::"
    }

    private static func isIPv6Literal(_ host: Substring) -> Bool {
        let address = host.split(separator: "%", maxSplits: 1).first ?? host
        return address.contains(":")
            && address.allSatisfy { $0 == ":" || $0 == "." || ($0.isASCII && $0.isHexDigit) }
    }

    /// Nil for an acceptable name or IPv4 address; otherwise what is wrong with it.
    private static func hostNameProblem(_ host: Substring) -> String? {
        if host.isEmpty { return nil }
        if host.allSatisfy({ $0.isASCIIDigit || $0 == "." }) {
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            let valid = octets.count == 4 && octets.allSatisfy { !$0.isEmpty && $0.count <= 3 && Int($0)! <= 255 }
            return valid ? nil : "is not a valid IPv4 address"
        }
        let allowed = host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        return allowed ? nil : "may only contain letters, digits, \"-\", \"_\" and \".\""
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
