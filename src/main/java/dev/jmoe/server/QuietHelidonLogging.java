package dev.jmoe.server;

import io.helidon.logging.common.spi.LoggingProvider;

/**
 * Helidon looks for a logging implementation to configure and, finding none, says so on stderr; jmoe prints its own
 * status lines and leaves java.util.logging as the JDK sets it up, so this provider configures nothing.
 */
public final class QuietHelidonLogging implements LoggingProvider {
    @Override public void initialization() {}

    @Override public void runTime() {}
}
