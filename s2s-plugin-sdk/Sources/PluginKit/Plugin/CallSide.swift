// Where a call comes from and which way a message goes, as the plugin ABI names them.

/// Which of a cluster connection's two listeners a call came through.
public enum CallSide: Sendable, Hashable, CaseIterable {
    /// From the local cluster, going to the remote one.
    case outbound
    /// From the remote cluster, going to the local one.
    case inbound
}

/// Which way a message travels.
public enum MessageDirection: Sendable, Hashable, CaseIterable {
    /// Client to server.
    case request
    /// Server to client.
    case response
}
