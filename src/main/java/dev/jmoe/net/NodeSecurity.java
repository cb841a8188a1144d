package dev.jmoe.net;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth;
import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.concurrent.Executor;
import javax.net.ssl.SSLException;

/**
 * How node links are authenticated and encrypted: mutual TLS (each node presents a certificate signed by the cluster's
 * CA and accepts only peers that do) and/or a shared token sent as the {@code x-jmoe-token} header of every call. A
 * server with either refuses a peer without it: the TLS handshake fails, or the call ends UNAUTHENTICATED before any
 * handler runs. {@link #NONE} (plaintext, no token) is for a single machine's loopback and tests.
 *
 * @param cert  this node's certificate chain (PEM), with {@code key}; null for no TLS
 * @param key   this node's private key (PKCS#8 PEM)
 * @param ca    the CA certificate(s) (PEM) peers must be signed by
 * @param token the shared token (from {@code --token-file}), or null
 */
public record NodeSecurity(Path cert, Path key, Path ca, String token) {
    public static final NodeSecurity NONE = new NodeSecurity(null, null, null, null);
    static final Metadata.Key<String> TOKEN_HEADER = Metadata.Key.of("x-jmoe-token", Metadata.ASCII_STRING_MARSHALLER);
    private static final int MAX_TOKEN_CHARS = 4096;

    public NodeSecurity {
        boolean any = cert != null || key != null || ca != null;
        if (any && (cert == null || key == null || ca == null)) {
            throw new IllegalArgumentException("mutual TLS needs all of --tls-cert, --tls-key and --tls-ca (got "
                    + (cert == null ? "" : "--tls-cert ") + (key == null ? "" : "--tls-key ") + (ca == null ? "" : "--tls-ca") + ")");
        }
        for (Path p : new Path[]{cert, key, ca}) {
            if (p != null && !Files.isReadable(p)) throw new IllegalArgumentException("cannot read TLS file " + p);
        }
        if (token != null) {
            if (token.isEmpty()) throw new IllegalArgumentException("the token is empty");
            if (token.length() > MAX_TOKEN_CHARS) throw new IllegalArgumentException("the token is longer than " + MAX_TOKEN_CHARS + " characters");
            for (int i = 0; i < token.length(); i++) {
                char c = token.charAt(i);
                if (c < 0x21 || c > 0x7e) throw new IllegalArgumentException("the token must be printable ASCII without spaces (character " + i + " is not)");
            }
        }
    }

    /** Security from the command-line files; the token file's first line is the token (surrounding whitespace dropped). */
    public static NodeSecurity of(Path cert, Path key, Path ca, Path tokenFile) {
        String token = null;
        if (tokenFile != null) {
            try {
                if (Files.size(tokenFile) > MAX_TOKEN_CHARS + 2) throw new IllegalArgumentException("--token-file " + tokenFile + " is too large for a token");
                token = Files.readString(tokenFile, StandardCharsets.US_ASCII).strip();
            } catch (IOException e) {
                throw new IllegalArgumentException("cannot read --token-file " + tokenFile + ": " + e.getMessage());
            }
            if (token.isEmpty()) throw new IllegalArgumentException("--token-file " + tokenFile + " is empty");
        }
        return new NodeSecurity(cert, key, ca, token);
    }

    public boolean tls() { return cert != null; }

    /** A short description for status lines ("mutual TLS + token", "plaintext"). */
    public String describe() {
        if (tls() && token != null) return "mutual TLS + token";
        if (tls()) return "mutual TLS";
        if (token != null) return "token over plaintext";
        return "plaintext, no authentication";
    }

    /** Applies TLS (client certificates required) and the token check to a server. */
    NettyServerBuilder secure(NettyServerBuilder b) {
        if (tls()) {
            try {
                SslContext ctx = GrpcSslContexts.forServer(cert.toFile(), key.toFile()).trustManager(ca.toFile()).clientAuth(ClientAuth.REQUIRE).build();
                b.sslContext(ctx);
            } catch (SSLException | IllegalArgumentException e) {
                throw new IllegalArgumentException("cannot set up TLS from " + cert + ", " + key + ", " + ca + ": " + e.getMessage());
            }
        }
        if (token != null) b.intercept(new TokenCheck(token));
        return b;
    }

    /** Applies TLS (presenting this node's certificate) and the token to a channel. */
    NettyChannelBuilder secure(NettyChannelBuilder b) {
        if (tls()) {
            try {
                b.sslContext(GrpcSslContexts.forClient().keyManager(cert.toFile(), key.toFile()).trustManager(ca.toFile()).build());
            } catch (SSLException | IllegalArgumentException e) {
                throw new IllegalArgumentException("cannot set up TLS from " + cert + ", " + key + ", " + ca + ": " + e.getMessage());
            }
        } else {
            b.usePlaintext();
        }
        return b;
    }

    /** Credentials that put the token on each call (null without a token). */
    CallCredentials credentials() {
        if (token == null) return null;
        String t = token;
        return new CallCredentials() {
            @Override
            public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
                Metadata h = new Metadata();
                h.put(TOKEN_HEADER, t);
                applier.apply(h);
            }
        };
    }

    /** Ends every call without the right token as UNAUTHENTICATED before its handler sees a message. */
    private static final class TokenCheck implements ServerInterceptor {
        private final byte[] expected;

        TokenCheck(String token) {
            this.expected = token.getBytes(StandardCharsets.US_ASCII);
        }

        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            String given = headers.get(TOKEN_HEADER);
            // constant-time comparison: the time to refuse says nothing about how much of the token was right
            boolean ok = given != null && MessageDigest.isEqual(expected, given.getBytes(StandardCharsets.US_ASCII));
            if (!ok) {
                call.close(Status.UNAUTHENTICATED.withDescription(given == null ? "missing x-jmoe-token" : "wrong x-jmoe-token"), new Metadata());
                return new ServerCall.Listener<>() {};
            }
            return next.startCall(call, headers);
        }
    }
}
