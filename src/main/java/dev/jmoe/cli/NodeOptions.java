package dev.jmoe.cli;

import dev.jmoe.net.NodeSecurity;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * How this node's links to the other nodes of a cluster are secured: mutual TLS and/or a shared token. The same
 * flags on the main node, the workers and the shadow node (see docs/distributed.md for making the CA and certificates).
 */
final class NodeOptions {
    @Option(names = "--tls-cert", paramLabel = "PEM", description = "this node's certificate chain (mutual TLS; with --tls-key and --tls-ca)")
    Path tlsCert;

    @Option(names = "--tls-key", paramLabel = "PEM", description = "this node's private key (PKCS#8 PEM)")
    Path tlsKey;

    @Option(names = "--tls-ca", paramLabel = "PEM", description = "the cluster CA's certificate: peers must present a certificate it signed")
    Path tlsCa;

    @Option(names = "--token-file", paramLabel = "FILE", description = "a file whose first line is the cluster's shared token; calls without it are refused")
    Path tokenFile;

    NodeSecurity security() {
        return NodeSecurity.of(tlsCert, tlsKey, tlsCa, tokenFile);
    }

    boolean given() {
        return tlsCert != null || tlsKey != null || tlsCa != null || tokenFile != null;
    }
}
