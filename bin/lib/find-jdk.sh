# Sourced by the bin/ scripts: sets JMOE_JAVA_HOME to a JDK whose major version is >= 25.
# Looks at $JAVA_HOME, then the java on PATH, then every /usr/lib/jvm/* and /opt/*jdk*, in that order.

jmoe_java_major() {
  # prints the major version of the java binary $1, or nothing
  "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}' | cut -d. -f1
}

jmoe_find_jdk() {
  local candidates=() c major
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  for c in /usr/lib/jvm/* /opt/*jdk* /opt/java/*; do [ -d "$c" ] && candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    major=$(jmoe_java_major "$c/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 25 ] 2>/dev/null; then
      JMOE_JAVA_HOME="$c"
      return 0
    fi
  done
  echo "jmoe: no JDK 25 or newer found (looked at \$JAVA_HOME, the java on PATH and /usr/lib/jvm/*)." >&2
  echo "jmoe: install one (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  return 1
}
