# shellcheck shell=bash disable=SC2034  # variables are used by the scripts sourcing this
# Shared helpers for scripts/kafka/*: locate the repo, find (or install) Java
# and Maven, resolve the pinned Kafka jars from pom.xml into the project-local
# lib/ folder, and run a stock Kafka console tool against the local broker.
#
# Sourced, not executed. Environment knobs (all optional):
#   KAFKA_HOME_DIR           state folder          (default <repo>/.local/kafka)
#   KAFKA_LIB_DIR            resolved jars         (default $KAFKA_HOME_DIR/lib; shareable)
#   KAFKA_PORT               client listener port  (default 39092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port (default 39093)
#   KAFKA_BOOTSTRAP_SERVERS  used by the console tools (default 127.0.0.1:$KAFKA_PORT)
#   KAFKA_VERSION            override the version pinned in pom.xml (for trying others)
#   JAVA_HOME                Java 17+ to use instead of the one on PATH

KAFKA_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_REPO_ROOT="$(cd "$KAFKA_SCRIPT_DIR/../.." && pwd)"
KAFKA_POM="$KAFKA_SCRIPT_DIR/pom.xml"

KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$KAFKA_REPO_ROOT/.local/kafka}"
KAFKA_PORT="${KAFKA_PORT:-39092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-39093}"
KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"

KAFKA_LIB_DIR="${KAFKA_LIB_DIR:-$KAFKA_HOME_DIR/lib}"
KAFKA_DATA_DIR="$KAFKA_HOME_DIR/data"
KAFKA_LOG_DIR="$KAFKA_HOME_DIR/logs"
KAFKA_PROPERTIES="$KAFKA_HOME_DIR/server.properties"
KAFKA_PID_FILE="$KAFKA_HOME_DIR/kafka.pid"

kafka_log() { printf 'kafka: %s\n' "$*" >&2; }
kafka_die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

# The Kafka version pinned in pom.xml (or the KAFKA_VERSION override).
kafka_version() {
  if [[ -n "${KAFKA_VERSION:-}" ]]; then
    printf '%s\n' "$KAFKA_VERSION"
  else
    sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$KAFKA_POM" | head -n1
  fi
}

# Install Debian packages when root; otherwise say exactly what is missing.
_kafka_apt_install() {
  if [[ "$(id -u)" != 0 ]]; then
    kafka_die "missing: $*; install them (Debian/Ubuntu: sudo apt-get install -y $*) or set JAVA_HOME / PATH"
  fi
  kafka_log "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# The java binary: $JAVA_HOME/bin/java if JAVA_HOME is set, else the one on PATH.
_kafka_java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then printf '%s\n' "$JAVA_HOME/bin/java"; else command -v java || true; fi
}

_kafka_java_major() {  # prints e.g. 17, or nothing if java cannot run
  "$1" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9.]*\).*/\1/p' | sed 's/^1\.//; s/\..*//'
}

# Sets JAVA to a Java 17+ binary, installing OpenJDK when root and none is found.
kafka_ensure_java() {
  local major
  JAVA="$(_kafka_java_bin)"
  if [[ -z "$JAVA" || ! -x "$JAVA" ]]; then
    [[ -n "${JAVA_HOME:-}" ]] && kafka_die "JAVA_HOME=$JAVA_HOME has no bin/java"
    local pkg=openjdk-17-jre-headless
    if [[ "$(id -u)" == 0 ]] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
      apt-get update -qq >&2 || true
      apt-cache show "$pkg" >/dev/null 2>&1 || pkg=default-jre-headless  # e.g. Debian 13 has 21+
    fi
    _kafka_apt_install "$pkg"
    JAVA="$(command -v java)" || kafka_die "java still not found after installing $pkg"
  fi
  major="$(_kafka_java_major "$JAVA")"
  [[ -n "$major" ]] || kafka_die "cannot run $JAVA"
  (( major >= 17 )) || kafka_die "Java 17+ required, $JAVA is Java $major (set JAVA_HOME to a newer JDK/JRE)"
  export JAVA
}

kafka_ensure_mvn() {
  command -v mvn >/dev/null 2>&1 || _kafka_apt_install maven
}

# Runs "$@" holding an exclusive lock on $KAFKA_HOME_DIR/<name>.lock. The lock's
# file descriptor is not inherited by anything "$@" leaves running.
kafka_with_lock() {
  local name="$1"; shift
  mkdir -p "$KAFKA_HOME_DIR"
  (
    exec {lock_fd}>"$KAFKA_HOME_DIR/.$name.lock"
    flock "$lock_fd"
    "$@" {lock_fd}>&-
  )
}

_kafka_stamp() {
  printf 'kafka=%s pom=%s\n' "$(kafka_version)" "$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
}

_kafka_resolve_jars() {
  local stamp want tmp
  want="$(_kafka_stamp)"
  stamp="$KAFKA_LIB_DIR/.stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  kafka_ensure_mvn
  kafka_log "resolving Kafka $(kafka_version) jars from Maven Central into $KAFKA_LIB_DIR"
  tmp="$KAFKA_LIB_DIR.tmp.$$"
  rm -rf "$tmp"
  local -a props=()
  [[ -n "${KAFKA_VERSION:-}" ]] && props+=("-Dkafka.version=$KAFKA_VERSION")
  # shellcheck disable=SC2086  # KAFKA_MVN_OPTS is split into words on purpose
  # (sed: Debian's Maven 3.8 prints stray colour codes even with -q -B.)
  mvn -q -B -f "$KAFKA_POM" "${props[@]}" ${KAFKA_MVN_OPTS:-} dependency:copy-dependencies \
      -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
    || { rm -rf "$tmp"; kafka_die "mvn could not resolve $KAFKA_POM"; }
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || kafka_die "no kafka_2.13 jar resolved into $tmp"
  printf '%s\n' "$want" >"$tmp/.stamp"
  rm -rf "$KAFKA_LIB_DIR"
  mv "$tmp" "$KAFKA_LIB_DIR"
}

# True if $1 is a live process that is this home's broker (java kafka.Kafka
# started with our server.properties), not some other process that reused the pid.
kafka_is_our_broker() {
  local pid="$1" cmdline
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *" kafka.Kafka $KAFKA_PROPERTIES"* ]]
}

# Makes sure Java is usable and lib/ holds the jars pinned by pom.xml.
kafka_ensure_jars() {
  kafka_ensure_java
  local want
  want="$(_kafka_stamp)"
  if [[ -f "$KAFKA_LIB_DIR/.stamp" && "$(cat "$KAFKA_LIB_DIR/.stamp")" == "$want" ]]; then
    return 0
  fi
  # Never swap the jars under a running broker: it loads classes lazily.
  if [[ -f "$KAFKA_LIB_DIR/.stamp" ]] &&
     kafka_is_our_broker "$(cat "$KAFKA_PID_FILE" 2>/dev/null || true)"; then
    kafka_log "warning: pom.xml changed but the broker is running; using the jars in $KAFKA_LIB_DIR ($(cat "$KAFKA_LIB_DIR/.stamp")) until 'scripts/kafka/server restart'"
    return 0
  fi
  kafka_with_lock lib _kafka_resolve_jars
}

# log4j2 configuration for the console tools: warnings and errors to stderr.
kafka_tools_log4j() {
  local f="$KAFKA_HOME_DIR/log4j2-tools.properties"
  mkdir -p "$KAFKA_HOME_DIR"
  cat >"$f.$$" <<'EOF'
# Generated by scripts/kafka/common.sh: console tools log warnings to stderr.
status = warn
name = kafka-tools
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
EOF
  mv -f "$f.$$" "$f"
  printf '%s\n' "$f"
}

# kafka_run_tool MAIN_CLASS [ARGS...]: exec a stock Kafka tool from lib/,
# adding --bootstrap-server unless the caller passed one.
kafka_run_tool() {
  local main="$1"; shift
  kafka_ensure_jars
  local -a args=("$@")
  local a has_bootstrap=0 want_help=0
  for a in "$@"; do
    case "$a" in
      --bootstrap-server|--bootstrap-server=*) has_bootstrap=1 ;;
      --help|-h|--version) want_help=1 ;;
    esac
  done
  if (( !has_bootstrap && !want_help )); then
    args=(--bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" "${args[@]}")
  fi
  # shellcheck disable=SC2086  # word splitting of the option strings is intended
  exec "$JAVA" ${KAFKA_TOOLS_HEAP_OPTS:--Xmx256m} \
    -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$(kafka_tools_log4j)" \
    ${KAFKA_TOOLS_JVM_OPTS:-} \
    -cp "$KAFKA_LIB_DIR/*" "$main" "${args[@]}"
}
