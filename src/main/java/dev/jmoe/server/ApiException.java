package dev.jmoe.server;

/**
 * A request the server answers with an error in OpenAI's shape: {@code {"error": {"message", "type", "param", "code"}}}
 * and an HTTP status.
 */
final class ApiException extends RuntimeException {
    final int status;
    final String type;
    final String param;
    final String code;
    /** Seconds a client should wait before retrying (Retry-After), or 0. */
    final int retryAfter;

    ApiException(int status, String type, String param, String code, String message, int retryAfter) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfter = retryAfter;
    }

    /** 400: something in the request is wrong; {@code param} names the field (or null). */
    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message, 0);
    }

    static ApiException invalid(String param, String code, String message) {
        return new ApiException(400, "invalid_request_error", param, code, message, 0);
    }
}
