// Names a place in the configuration tree, the way error messages print it.
//
// Owns `ConfigKeyPath` (`clusterConnections[0].remote.tcpClient.address`). It knows nothing about which keys
// exist; `ProxyConfigDecoder` builds paths while it walks the file.

/// A path from the top of the configuration file to one key or list item.
struct ConfigKeyPath: Hashable, Sendable, CustomStringConvertible {
    /// One step of the path: a mapping key or a list index.
    enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
    }

    /// The steps from the top of the file; empty for the document itself.
    private(set) var components: [Component]

    /// The document itself.
    static let root = ConfigKeyPath(components: [])

    private init(components: [Component]) {
        self.components = components
    }

    /// The path of `keys` (each nested in the previous one) inside the mapping at this path.
    func appending(_ keys: String...) -> ConfigKeyPath {
        ConfigKeyPath(components: components + keys.map { .key($0) })
    }

    /// The path of item `index` of the list at this path.
    func appending(index: Int) -> ConfigKeyPath {
        ConfigKeyPath(components: components + [.index(index)])
    }

    /// The enclosing path, or nil for the root.
    var parent: ConfigKeyPath? {
        components.isEmpty ? nil : ConfigKeyPath(components: Array(components.dropLast()))
    }

    /// Dotted keys with bracketed indices, e.g. `clusterConnections[0].local`; empty for the root.
    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key):
                text += text.isEmpty ? key : ".\(key)"
            case .index(let index):
                text += "[\(index)]"
            }
        }
        return text
    }
}
