// Starling's benchmark load generator: one thread, one epoll loop, its own WebSocket client (handshake
// with a random key and a checked Sec-WebSocket-Accept, masked client frames, incremental parsing of
// server frames). It connects to 127.0.0.1 only, runs one scenario for a fixed time, and prints one
// line of JSON.
//
//   loadgen --port N --scenario echo      [--connections 100] [--size 64] [--depth 1] [--binary]
//   loadgen --port N --scenario broadcast [--connections 500] [--size 64] [--publishers 4] [--window 4]
//   loadgen --port N --scenario idle      [--connections 10000] --server-pid PID
//   common: [--path /echo] [--duration 5] [--warmup 1] [--timeout S] [--server-pid PID] [--label X]
//           [--also-port N]... (connections spread round-robin over --port and each --also-port:
//           servers of one deployment, say two processes linked by a backplane) [--deflate] [--tls]
//           [--filler random|text]
//
// --deflate offers permessage-deflate without context takeover either way and inflates every message
// that arrives compressed (counted in "compressed_messages"); it sends its own messages uncompressed,
// which the extension allows, so what is measured is the server's compressing.
// --tls speaks wss://: TLS (OpenSSL, whatever version and cipher both sides prefer; reported as "tls")
// over the same non-blocking socket and the same loop. No certificate is verified and no server name
// is sent: the server is a benchmark peer on 127.0.0.1 with a certificate made for the run, and what
// is measured is the cost of the encrypted connection, not of trusting it.
// --filler text: the payload after its header is English-like words instead of random letters, so
// that it compresses the way text does (the compressed rows); random letters (the default) compress
// to about three quarters.
// echo:      every connection keeps `depth` messages in flight on /echo; each answer is checked byte
//            for byte (type, length, sequence number, content) and its round trip recorded.
// broadcast: every connection joins /chat; `publishers` of them each keep up to `window` messages in
//            flight, a message counting as done once every connection (the sender too) received it.
//            Delivered messages/s, and latency from the send timestamp carried in the payload.
// idle:      opens `connections` connections (handshakes/s), waits, then reads the server's VmRSS from
//            /proc/PID/status: KiB per connection over the RSS before the first connection.
//
// Payloads are ASCII (valid as text or binary): 8 hex digits of sender id, 16 of sequence number, 16 of
// send time in ns, then filler taken from a fixed random pattern at an offset that depends on the
// sequence number, so a stale, reordered or corrupted message does not compare equal.
//
// Also reported: the server's CPU use (from /proc/PID/stat) and ours during the measured interval, to
// show which side is the bottleneck. Exit status 0 on success, 1 on errors, 2 on usage, 3 on timeout.

#include <arpa/inet.h>      // htons, htonl
#include <fcntl.h>          // fcntl O_NONBLOCK
#include <netinet/in.h>     // sockaddr_in
#include <netinet/tcp.h>    // TCP_NODELAY
#include <sys/epoll.h>      // epoll
#include <sys/resource.h>   // getrlimit, setrlimit, getrusage
#include <sys/socket.h>     // socket, connect
#include <time.h>           // clock_gettime
#include <unistd.h>         // read, write, close, sysconf
#include <zlib.h>           // inflate: --deflate
#include <openssl/err.h>    // ERR_clear_error: --tls
#include <openssl/ssl.h>    // SSL: --tls

#include <algorithm>        // std::min, std::max
#include <array>            // std::array
#include <climits>          // INT_MAX
#include <bit>              // std::countl_zero
#include <cctype>           // std::tolower
#include <cerrno>           // errno
#include <charconv>         // std::from_chars
#include <cstdint>          // fixed-width integers
#include <cstdio>           // std::printf, std::fprintf
#include <cstdlib>          // std::exit
#include <cstring>          // std::memcpy, std::memcmp, std::strerror
#include <fstream>          // /proc files
#include <memory>           // std::unique_ptr
#include <random>           // std::random_device for seeds
#include <sstream>          // std::istringstream
#include <string>           // std::string
#include <string_view>      // std::string_view
#include <utility>          // std::pair
#include <vector>           // std::vector

namespace {

// ---- time ------------------------------------------------------------------------------------------

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// ---- random ----------------------------------------------------------------------------------------

struct xorshift {
    std::uint64_t s;
    std::uint64_t next() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

// ---- SHA-1 and base64, for the handshake -------------------------------------------------------------

std::array<std::uint8_t, 20> sha1(std::string_view data) {
    std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::string m(data);
    const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    m.push_back(static_cast<char>(0x80));
    while (m.size() % 64 != 56) m.push_back('\0');
    for (int i = 7; i >= 0; --i) m.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
    auto rol = [](std::uint32_t v, int n) { return (v << n) | (v >> (32 - n)); };
    for (std::size_t off = 0; off < m.size(); off += 64) {
        std::uint32_t w[80];
        for (int i = 0; i < 16; ++i) {
            const auto* p = reinterpret_cast<const unsigned char*>(m.data() + off + static_cast<std::size_t>(i) * 4);
            w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
        }
        for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            std::uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    std::array<std::uint8_t, 20> out{};
    for (int i = 0; i < 20; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(h[i / 4] >> (24 - 8 * (i % 4)));
    return out;
}

std::string base64(const std::uint8_t* data, std::size_t n) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        std::uint32_t v = std::uint32_t{data[i]} << 16;
        if (i + 1 < n) v |= std::uint32_t{data[i + 1]} << 8;
        if (i + 2 < n) v |= data[i + 2];
        out.push_back(table[(v >> 18) & 63]);
        out.push_back(table[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? table[(v >> 6) & 63] : '=');
        out.push_back(i + 2 < n ? table[v & 63] : '=');
    }
    return out;
}

// ---- latency histogram: log-linear buckets, under 1% relative error ---------------------------------

class histogram {
public:
    void add(std::uint64_t v) {
        ++counts_[index(v)];
        ++total_;
    }
    void clear() {
        std::fill(counts_.begin(), counts_.end(), 0);
        total_ = 0;
    }
    std::uint64_t total() const { return total_; }
    /// The value at quantile q (0..1), in ns: the middle of the bucket holding it.
    double quantile(double q) const {
        if (total_ == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return static_cast<double>(lower(i) + lower(i + 1)) / 2.0;
        }
        return static_cast<double>(lower(counts_.size() - 1));
    }

private:
    static constexpr int sub_bits = 7;
    static constexpr std::size_t buckets = (64 - sub_bits + 1) << sub_bits;
    static std::size_t index(std::uint64_t v) {
        if (v < (1u << sub_bits)) return static_cast<std::size_t>(v);
        const int msb = 63 - std::countl_zero(v);
        const std::uint64_t top = v >> (msb - sub_bits);  // in [2^sub_bits, 2^(sub_bits+1))
        return (static_cast<std::size_t>(msb - sub_bits + 1) << sub_bits) + static_cast<std::size_t>(top - (1u << sub_bits));
    }
    static std::uint64_t lower(std::size_t i) {
        if (i < (1u << sub_bits)) return i;
        const std::size_t group = i >> sub_bits;
        const std::uint64_t offset = i & ((1u << sub_bits) - 1);
        const int shift = static_cast<int>(group) - 1;
        if (shift >= 57) return UINT64_MAX;
        return ((std::uint64_t{1} << sub_bits) + offset) << shift;
    }
    std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(buckets + 1, 0);
    std::uint64_t total_ = 0;
};

// ---- options ---------------------------------------------------------------------------------------

enum class scenario_kind { echo, broadcast, idle };

struct options {
    scenario_kind scenario = scenario_kind::echo;
    std::string scenario_name = "echo";
    std::string label;
    std::uint16_t port = 0;
    std::vector<std::uint16_t> also_ports;  // more servers; connection i goes to ports[i % count]
    std::string path;
    std::size_t connections = 0;
    std::size_t size = 64;
    std::size_t depth = 1;
    bool binary = false;
    bool deflate = false;  // offer permessage-deflate (no context takeover); inflate what comes compressed
    bool tls = false;      // wss://
    bool text_filler = false;  // --filler text: compressible words instead of random letters
    double duration = 5;
    double warmup = 1;
    double timeout = 0;  // 0: warmup + duration + 30 s
    double settle = 1;   // idle: wait before reading RSS
    std::size_t publishers = 4;
    std::size_t window = 4;
    std::size_t concurrency = 256;  // handshakes in flight at once
    long server_pid = 0;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "loadgen: %s\n"
                 "usage: loadgen --port N [--scenario echo|broadcast|idle] [--path P] [--connections N]\n"
                 "               [--size BYTES] [--depth N] [--binary] [--deflate] [--tls] [--filler random|text]\n"
                 "               [--publishers N] [--window N]\n"
                 "               [--duration S] [--warmup S] [--timeout S] [--settle S]\n"
                 "               [--concurrency N] [--server-pid PID] [--label TEXT] [--also-port N]...\n",
                 why);
    std::exit(2);
}

options parse_options(int argc, char** argv) {
    options o;
    auto value = [&](int& i) -> std::string_view {
        if (i + 1 >= argc) usage("missing value");
        return argv[++i];
    };
    auto integer = [&](int& i) -> std::uint64_t {
        const std::string_view v = value(i);
        std::uint64_t n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size()) usage("bad number");
        return n;
    };
    auto real = [&](int& i) -> double {
        const std::string v(value(i));
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end != '\0' || d < 0) usage("bad number");
        return d;
    };
    auto port = [&](int& i) -> std::uint16_t {
        const auto p = integer(i);
        if (p == 0 || p > 65535) usage("bad port");
        return static_cast<std::uint16_t>(p);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--port") o.port = port(i);
        else if (a == "--also-port") o.also_ports.push_back(port(i));
        else if (a == "--scenario") {
            o.scenario_name = std::string(value(i));
            if (o.scenario_name == "echo") o.scenario = scenario_kind::echo;
            else if (o.scenario_name == "broadcast") o.scenario = scenario_kind::broadcast;
            else if (o.scenario_name == "idle") o.scenario = scenario_kind::idle;
            else usage("unknown scenario");
        } else if (a == "--path") o.path = std::string(value(i));
        else if (a == "--connections") o.connections = integer(i);
        else if (a == "--size") o.size = integer(i);
        else if (a == "--depth") o.depth = integer(i);
        else if (a == "--binary") o.binary = true;
        else if (a == "--deflate") o.deflate = true;
        else if (a == "--tls") o.tls = true;
        else if (a == "--filler") {
            const std::string_view f = value(i);
            if (f == "text") o.text_filler = true;
            else if (f != "random") usage("--filler is random or text");
        }
        else if (a == "--duration") o.duration = real(i);
        else if (a == "--warmup") o.warmup = real(i);
        else if (a == "--timeout") o.timeout = real(i);
        else if (a == "--settle") o.settle = real(i);
        else if (a == "--publishers") o.publishers = integer(i);
        else if (a == "--window") o.window = integer(i);
        else if (a == "--concurrency") o.concurrency = integer(i);
        else if (a == "--server-pid") o.server_pid = static_cast<long>(integer(i));
        else if (a == "--label") o.label = std::string(value(i));
        else usage("unknown option");
    }
    if (o.port == 0) usage("--port is required");
    if (o.path.empty()) o.path = o.scenario == scenario_kind::broadcast ? "/chat" : "/echo";
    if (o.connections == 0)
        o.connections = o.scenario == scenario_kind::echo ? 100 : o.scenario == scenario_kind::broadcast ? 500 : 10000;
    if (o.size < 40) usage("--size must be at least 40 (the payload header)");
    if (o.depth == 0 || o.window == 0 || o.concurrency == 0) usage("--depth, --window and --concurrency must be positive");
    if (o.scenario == scenario_kind::broadcast && (o.publishers == 0 || o.publishers > o.connections))
        usage("--publishers must be between 1 and --connections");
    if (o.scenario == scenario_kind::idle && o.server_pid == 0) usage("idle needs --server-pid");
    if (o.timeout == 0) o.timeout = o.warmup + o.duration + o.settle + 30;
    return o;
}

// ---- /proc -----------------------------------------------------------------------------------------

/// The process's user + system CPU time in seconds, or -1.
double process_cpu_seconds(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!pid || !std::getline(f, line)) return -1;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) return -1;
    std::istringstream rest(line.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// Busy and total jiffies of all CPUs together, from /proc/stat.
std::pair<double, double> machine_cpu_jiffies() {
    std::ifstream f("/proc/stat");
    std::string name;
    f >> name;  // "cpu": the sum over all CPUs
    double total = 0, idle = 0, v = 0;
    for (int i = 0; i < 8 && f >> v; ++i) {  // user nice system idle iowait irq softirq steal
        total += v;
        if (i == 3 || i == 4) idle += v;
    }
    return {total - idle, total};
}

/// VmRSS of the process in KiB, or -1.
long rss_kib(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// ---- payloads --------------------------------------------------------------------------------------

constexpr std::size_t header_bytes = 40;  // 8 hex id, 16 hex sequence, 16 hex timestamp
constexpr std::size_t filler_offsets = 61;
constexpr std::uint32_t probe_id = 0xffffffff;  // broadcast: join-check messages

void put_hex(char* out, std::uint64_t v, int digits) {
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; --i) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
}

bool get_hex(const char* in, int digits, std::uint64_t& v) {
    v = 0;
    for (int i = 0; i < digits; ++i) {
        const char c = in[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
        else return false;
        v = (v << 4) | d;
    }
    return true;
}

// ---- connections -----------------------------------------------------------------------------------

enum class conn_state { idle, connecting, tls_handshaking, handshaking, open, closed };

struct connection {
    int fd = -1;
    std::uint32_t id = 0;
    std::uint16_t port = 0;  // the server it connects to
    conn_state state = conn_state::idle;
    SSL* ssl = nullptr;  // --tls
    std::string expected_accept;

    std::vector<char> in;  // received, not yet parsed: [in_begin, in_end)
    std::size_t in_begin = 0;
    std::size_t in_end = 0;
    std::vector<char> out;  // to send: [out_off, out.size())
    std::size_t out_off = 0;
    bool epollout = false;  // registered for EPOLLOUT
    bool dirty = false;     // in the flush list

    std::vector<char> message;  // a fragmented message being assembled
    bool in_message = false;
    bool message_compressed = false;  // RSV1 on its first frame
    std::uint8_t message_op = 0;

    // echo
    std::uint64_t next_send = 0;
    std::uint64_t next_receive = 0;
    std::uint64_t last_progress = 0;  // when the last answer arrived (ns)
    // broadcast: the next sequence number expected from each publisher
    std::vector<std::uint64_t> expected;
};

struct publisher_state {
    std::uint64_t next_send = 0;
    std::uint64_t done = 0;              // every message below has reached every connection
    std::uint64_t last_progress = 0;     // when `done` last advanced (ns)
    std::vector<std::uint32_t> receipts;  // per sequence number modulo window
};

class load_generator {
public:
    explicit load_generator(options o) : o_(std::move(o)) {
        std::random_device rd;
        rng_.s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ now_ns();
        if (rng_.s == 0) rng_.s = 1;
        static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        filler_.resize(o_.size + filler_offsets);
        if (o_.text_filler) {
            // Words drawn at random from a small vocabulary, separated by spaces: about what chat or
            // JSON text compresses to (several times smaller), unlike random letters.
            static constexpr std::string_view words[] = {
                "the", "message", "server", "client", "connection", "sent", "received", "over", "a",
                "websocket", "and", "every", "room", "with", "text", "of", "to", "from", "hello", "world",
                "status", "update", "user", "time", "value", "event", "data", "is", "in", "on", "for", "at"};
            std::size_t at = 0;
            while (at < filler_.size()) {
                const std::string_view w = words[rng_.next() % std::size(words)];
                for (std::size_t i = 0; i <= w.size() && at < filler_.size(); ++i) filler_[at++] = i < w.size() ? w[i] : ' ';
            }
        } else {
            for (char& c : filler_) c = alphabet[rng_.next() % (sizeof(alphabet) - 1)];
        }
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) fatal("epoll_create1");
        if (o_.tls) make_tls_context();
        conns_.resize(o_.connections);
        for (std::size_t i = 0; i < conns_.size(); ++i) {
            conns_[i].id = static_cast<std::uint32_t>(i);
            const std::size_t server = i % (1 + o_.also_ports.size());
            conns_[i].port = server == 0 ? o_.port : o_.also_ports[server - 1];
        }
        if (o_.scenario == scenario_kind::broadcast) {
            pubs_.resize(o_.publishers);
            for (auto& p : pubs_) p.receipts.assign(o_.window, 0);
            for (auto& c : conns_) c.expected.assign(o_.publishers, 0);
        }
        start_ns_ = now_ns();
        hard_deadline_ = start_ns_ + static_cast<std::uint64_t>(o_.timeout * 1e9);
    }

    int run() {
        raise_fd_limit(o_.connections + 64);
        if (o_.scenario == scenario_kind::idle) rss_base_ = rss_kib(o_.server_pid);

        // Phase 1: connect and handshake every connection, `concurrency` at a time.
        const std::uint64_t connect_start = now_ns();
        std::size_t next_to_open = 0;
        while (opened_ < conns_.size()) {
            while (next_to_open < conns_.size() && next_to_open - opened_ < o_.concurrency) start_connect(conns_[next_to_open++]);
            if (!poll_once(now_ns() + 50'000'000)) return finish(3);
            if (failed()) return finish(1);
        }
        connect_seconds_ = static_cast<double>(now_ns() - connect_start) / 1e9;

        if (o_.scenario == scenario_kind::idle) return run_idle();
        if (o_.scenario == scenario_kind::broadcast && !wait_for_joins()) return finish(failed() ? 1 : 3);

        // Phase 2: traffic. Warm up, then measure.
        running_ = true;
        if (o_.scenario == scenario_kind::echo) {
            for (auto& c : conns_)
                for (std::size_t i = 0; i < o_.depth; ++i) send_echo(c);
        } else {
            for (std::size_t p = 0; p < pubs_.size(); ++p) pump_publisher(p);
        }
        flush_all();
        const std::uint64_t warm_end = now_ns() + static_cast<std::uint64_t>(o_.warmup * 1e9);
        while (now_ns() < warm_end) {
            if (!poll_once(warm_end)) return finish(3);
            if (failed()) return finish(1);
        }
        begin_measurement();
        const std::uint64_t end = measure_start_ + static_cast<std::uint64_t>(o_.duration * 1e9);
        while (now_ns() < end) {
            if (!poll_once(end)) return finish(3);
            if (failed()) return finish(1);
        }
        end_measurement();
        return finish(failed() ? 1 : 0);
    }

private:
    // ---- errors and output ----

    [[noreturn]] static void fatal(const char* what) {
        std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(errno));
        std::exit(1);
    }

    void error(const connection& c, const std::string& what) {
        if (errors_++ == 0) first_error_ = "connection " + std::to_string(c.id) + ": " + what;
    }
    bool failed() const { return errors_ > 0; }

    static std::string json_string(const std::string& s) {
        std::string out = "\"";
        for (const char ch : s) {
            if (ch == '"' || ch == '\\') out.push_back('\\');
            if (static_cast<unsigned char>(ch) < 0x20) continue;
            out.push_back(ch);
        }
        return out + "\"";
    }

    int finish(int status) {
        if (status == 3 && first_error_.empty()) first_error_ = "timeout";
        std::string j = "{";
        auto field = [&](const char* k, const std::string& v) {
            if (j.size() > 1) j += ",";
            j += "\"";
            j += k;
            j += "\":";
            j += v;
        };
        auto number = [](double v) {
            char b[64];
            std::snprintf(b, sizeof b, "%.6g", v);
            return std::string(b);
        };
        field("scenario", json_string(o_.scenario_name));
        field("label", json_string(o_.label));
        field("path", json_string(o_.path));
        field("connections", std::to_string(o_.connections));
        field("size", std::to_string(o_.size));
        field("binary", o_.binary ? "true" : "false");
        if (o_.deflate) field("compressed_messages", std::to_string(compressed_messages_));
        if (o_.tls) field("tls", json_string(tls_negotiated_));
        if (o_.text_filler) field("filler", json_string("text"));
        field("ok", status == 0 ? "true" : "false");
        field("errors", std::to_string(errors_));
        if (!first_error_.empty()) field("error", json_string(first_error_));
        field("connect_s", number(connect_seconds_));
        if (connect_seconds_ > 0) field("handshakes_per_s", number(static_cast<double>(opened_) / connect_seconds_));
        if (o_.scenario == scenario_kind::echo) field("depth", std::to_string(o_.depth));
        if (o_.scenario == scenario_kind::broadcast) {
            field("publishers", std::to_string(o_.publishers));
            field("window", std::to_string(o_.window));
        }
        if (measured_seconds_ > 0) {
            field("duration_s", number(measured_seconds_));
            field("messages", std::to_string(measured_messages_));
            field("msgs_per_s", number(static_cast<double>(measured_messages_) / measured_seconds_));
            field("mib_per_s", number(static_cast<double>(measured_messages_) * static_cast<double>(o_.size) /
                                      measured_seconds_ / (1024.0 * 1024.0)));
            field("p50_us", number(latency_.quantile(0.50) / 1e3));
            field("p99_us", number(latency_.quantile(0.99) / 1e3));
            field("p999_us", number(latency_.quantile(0.999) / 1e3));
            if (server_cpu_ >= 0) field("server_cpu", number(server_cpu_));
            field("loadgen_cpu", number(loadgen_cpu_));
            // CPU time (in cores) that neither the server nor we used: other processes, interrupts.
            if (other_cpu_ > -1) field("other_cpu", number(other_cpu_));
        }
        if (o_.scenario == scenario_kind::idle && rss_after_ > 0) {
            field("rss_base_kib", std::to_string(rss_base_));
            field("rss_kib", std::to_string(rss_after_));
            field("kib_per_conn", number(static_cast<double>(rss_after_ - rss_base_) / static_cast<double>(o_.connections)));
        }
        j += "}";
        std::printf("%s\n", j.c_str());
        std::fflush(stdout);
        return status;
    }

    // ---- setup ----

    static void raise_fd_limit(std::size_t need) {
        rlimit r{};
        if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
        if (r.rlim_cur >= need) return;
        if (r.rlim_max < need) r.rlim_max = need;  // works as root; otherwise the next call fails
        r.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
            getrlimit(RLIMIT_NOFILE, &r);
            r.rlim_cur = r.rlim_max;
            setrlimit(RLIMIT_NOFILE, &r);
        }
    }

    void start_connect(connection& c) {
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) {
            error(c, std::string("socket: ") + std::strerror(errno));
            return;
        }
        const int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(c.port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // 127.0.0.1, and nothing else
        c.state = conn_state::connecting;
        if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
            error(c, std::string("connect: ") + std::strerror(errno));
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.ptr = &c;
        c.epollout = true;
        if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) fatal("epoll_ctl");
        c.in.resize(o_.scenario == scenario_kind::idle ? 1024 : std::max<std::size_t>(16384, std::min<std::size_t>(o_.size * 2 + 64, 1 << 16)));
    }

    void send_handshake(connection& c) {
        std::uint8_t key_bytes[16];
        for (int i = 0; i < 16; i += 8) {
            const std::uint64_t r = rng_.next();
            std::memcpy(key_bytes + i, &r, 8);
        }
        const std::string key = base64(key_bytes, sizeof key_bytes);
        const auto digest = sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
        c.expected_accept = base64(digest.data(), digest.size());
        const std::string request = "GET " + o_.path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(c.port) +
                                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                                    "\r\nSec-WebSocket-Version: 13\r\n" +
                                    (o_.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                                                  "client_no_context_takeover\r\n"
                                                : "") +
                                    "\r\n";
        c.out.insert(c.out.end(), request.begin(), request.end());
        c.state = conn_state::handshaking;
        mark_dirty(c);
    }

    /// Parses the 101 response at the front of the input; returns false while it is incomplete.
    bool parse_handshake_response(connection& c) {
        const std::string_view data(c.in.data() + c.in_begin, c.in_end - c.in_begin);
        const auto end = data.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (data.size() > 8192) error(c, "handshake response too large");
            return false;
        }
        const std::string_view head = data.substr(0, end + 2);
        if (head.rfind("HTTP/1.1 101", 0) != 0) {
            error(c, "handshake refused: " + std::string(head.substr(0, head.find("\r\n"))));
            return false;
        }
        bool accepted = false;
        std::size_t pos = head.find("\r\n") + 2;
        while (pos < head.size()) {
            const auto eol = head.find("\r\n", pos);
            const std::string_view line = head.substr(pos, eol - pos);
            pos = eol + 2;
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string name(line.substr(0, colon));
            for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
            if (name == "sec-websocket-accept") accepted = value == c.expected_accept;
        }
        if (!accepted) {
            error(c, "missing or wrong Sec-WebSocket-Accept");
            return false;
        }
        c.in_begin += end + 4;
        c.state = conn_state::open;
        ++opened_;
        return true;
    }

    // ---- TLS (--tls) ----

    void make_tls_context() {
        tls_ = SSL_CTX_new(TLS_client_method());
        if (!tls_) fatal("SSL_CTX_new");
        SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);  // see the top of the file
        // Partial writes, and a retry from a buffer that has moved or grown since: what write() allows,
        // so that flush() treats both transports alike.
        SSL_CTX_set_mode(tls_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }

    /// Registers the socket for reading, and for writing too when `out` is set.
    void watch(connection& c, bool out) {
        epoll_event ev{};
        ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
        ev.data.ptr = &c;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
        c.epollout = out;
    }

    void start_tls(connection& c) {
        c.ssl = SSL_new(tls_);
        if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1) {
            error(c, "SSL_new failed");
            close_connection(c);
            return;
        }
        SSL_set_connect_state(c.ssl);
        c.state = conn_state::tls_handshaking;
        continue_tls(c);
    }

    /// Drives the TLS handshake as far as the socket allows; sends the upgrade request once done.
    void continue_tls(connection& c) {
        ERR_clear_error();
        const int r = SSL_do_handshake(c.ssl);
        if (r == 1) {
            if (tls_negotiated_.empty())
                tls_negotiated_ = std::string(SSL_get_version(c.ssl)) + " " + SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl));
            watch(c, false);
            send_handshake(c);
            return;
        }
        const int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            watch(c, e == SSL_ERROR_WANT_WRITE);
            return;
        }
        error(c, "TLS handshake failed: " + transport_error());
        close_connection(c);
    }

    /// OpenSSL's first queued error, or errno's text.
    static std::string transport_error() {
        const unsigned long e = ERR_peek_error();
        if (e == 0) return std::strerror(errno);
        char text[256];
        ERR_error_string_n(e, text, sizeof text);
        return text;
    }

    /// write() or SSL_write(), with write()'s conventions (EAGAIN when it would block).
    ssize_t send_some(connection& c, const char* p, std::size_t n) {
        if (!c.ssl) return write(c.fd, p, n);
        ERR_clear_error();
        const int r = SSL_write(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
        if (r > 0) return r;
        return tls_failure(c, r);
    }

    /// read() or SSL_read(), with read()'s conventions (0 at the end, EAGAIN when nothing is there).
    ssize_t receive_some(connection& c, char* p, std::size_t n) {
        if (!c.ssl) return read(c.fd, p, n);
        ERR_clear_error();
        const int r = SSL_read(c.ssl, p, static_cast<int>(std::min<std::size_t>(n, INT_MAX)));
        if (r > 0) return r;
        return tls_failure(c, r);
    }

    static ssize_t tls_failure(connection& c, int r) {
        switch (SSL_get_error(c.ssl, r)) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
        case SSL_ERROR_ZERO_RETURN: return 0;  // the server's close_notify
        case SSL_ERROR_SYSCALL: if (errno == 0) errno = ECONNRESET; return -1;
        default: errno = EPROTO; return -1;
        }
    }

    // ---- the event loop ----

    /// Waits for events until `until` (or 10 ms), handles them, and sends what they produced.
    /// Returns false when the hard timeout has passed.
    bool poll_once(std::uint64_t until) {
        const std::uint64_t now = now_ns();
        if (now >= hard_deadline_) return false;
        const std::uint64_t wait_until = std::min(until, hard_deadline_);
        const int timeout_ms = wait_until > now ? static_cast<int>(std::min<std::uint64_t>((wait_until - now) / 1'000'000 + 1, 10)) : 0;
        epoll_event events[256];
        const int n = epoll_wait(epfd_, events, 256, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) return true;
            fatal("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            auto& c = *static_cast<connection*>(events[i].data.ptr);
            if (c.state == conn_state::closed) continue;
            if (c.state == conn_state::connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0) {
                    error(c, std::string("connect: ") + std::strerror(err));
                    close_connection(c);
                    continue;
                }
                if (o_.tls) {
                    start_tls(c);
                    continue;
                }
                watch(c, false);
                send_handshake(c);
                continue;
            }
            if (c.state == conn_state::tls_handshaking) {
                continue_tls(c);
                flush_all();
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
            if ((events[i].events & EPOLLOUT) && c.state != conn_state::closed) mark_dirty(c);
            // Send what this event produced at once (one write per connection and event either way):
            // holding it until the whole batch is handled would leave the server idle meanwhile.
            flush_all();
        }
        flush_all();
        return true;
    }

    void close_connection(connection& c) {
        if (c.ssl) SSL_free(c.ssl);
        c.ssl = nullptr;
        if (c.fd >= 0) close(c.fd);
        c.fd = -1;
        c.state = conn_state::closed;
    }

    void on_readable(connection& c) {
        // Room to read: compact, and grow when a frame needs more than the buffer holds.
        if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
        if (c.in.size() - c.in_end < 4096) {
            std::memmove(c.in.data(), c.in.data() + c.in_begin, c.in_end - c.in_begin);
            c.in_end -= c.in_begin;
            c.in_begin = 0;
            if (c.in.size() - c.in_end < 4096) c.in.resize(c.in.size() * 2);
        }
        const ssize_t n = receive_some(c, c.in.data() + c.in_end, c.in.size() - c.in_end);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
            error(c, n == 0 ? "server closed the connection" : std::string("read: ") + transport_error());
            close_connection(c);
            return;
        }
        c.in_end += static_cast<std::size_t>(n);
        read_time_ = now_ns();
        if (c.state == conn_state::handshaking && !parse_handshake_response(c)) return;
        if (c.state == conn_state::open) parse_frames(c);
        // TLS may hold decrypted bytes that did not fit: the socket will not signal them again.
        if (c.ssl && c.state != conn_state::closed && SSL_pending(c.ssl) > 0) on_readable(c);
    }

    void parse_frames(connection& c) {
        for (;;) {
            const std::size_t avail = c.in_end - c.in_begin;
            if (avail < 2) break;
            const auto* p = reinterpret_cast<const std::uint8_t*>(c.in.data() + c.in_begin);
            const bool fin = (p[0] & 0x80) != 0;
            const std::uint8_t op = p[0] & 0x0f;
            const bool rsv1 = (p[0] & 0x40) != 0;
            if ((p[0] & (o_.deflate ? 0x30 : 0x70)) != 0) return error(c, "reserved bits set");
            if ((p[1] & 0x80) != 0) return error(c, "masked server frame");
            std::uint64_t len = p[1] & 0x7f;
            std::size_t head = 2;
            if (len == 126) {
                if (avail < 4) break;
                len = (std::uint64_t{p[2]} << 8) | p[3];
                head = 4;
            } else if (len == 127) {
                if (avail < 10) break;
                len = 0;
                for (int i = 2; i < 10; ++i) len = (len << 8) | p[i];
                head = 10;
            }
            if (len > (std::uint64_t{1} << 31)) return error(c, "frame too large");
            const std::size_t total = head + static_cast<std::size_t>(len);
            if (avail < total) {
                // Make sure the whole frame fits once it has arrived.
                if (c.in.size() - c.in_begin < total) {
                    std::memmove(c.in.data(), c.in.data() + c.in_begin, avail);
                    c.in_end = avail;
                    c.in_begin = 0;
                    if (c.in.size() < total + 4096) c.in.resize(total + 4096);
                }
                break;
            }
            const char* payload = c.in.data() + c.in_begin + head;
            c.in_begin += total;
            on_frame(c, fin, op, rsv1, payload, static_cast<std::size_t>(len));
            if (c.state == conn_state::closed) return;
        }
        if (c.in_begin == c.in_end) c.in_begin = c.in_end = 0;
    }

    void on_frame(connection& c, bool fin, std::uint8_t op, bool rsv1, const char* payload, std::size_t len) {
        if (rsv1 && op != 0x1 && op != 0x2) return error(c, "RSV1 on a control frame or continuation");
        switch (op) {
        case 0x1:
        case 0x2:
            if (c.in_message) return error(c, "new message inside a fragmented one");
            if (fin) return rsv1 ? on_compressed(c, op, payload, len) : on_message(c, op, payload, len);
            c.message.assign(payload, payload + len);
            c.in_message = true;
            c.message_compressed = rsv1;
            c.message_op = op;
            return;
        case 0x0:
            if (!c.in_message) return error(c, "continuation without a message");
            c.message.insert(c.message.end(), payload, payload + len);
            if (fin) {
                c.in_message = false;
                if (c.message_compressed) return on_compressed(c, c.message_op, c.message.data(), c.message.size());
                on_message(c, c.message_op, c.message.data(), c.message.size());
            }
            return;
        case 0x8: {
            unsigned code = len >= 2 ? (static_cast<unsigned>(static_cast<std::uint8_t>(payload[0])) << 8) | static_cast<std::uint8_t>(payload[1]) : 1005;
            return error(c, "server sent close " + std::to_string(code) + " " + std::string(payload + std::min<std::size_t>(len, 2), payload + len));
        }
        case 0x9: append_frame(c, 0xA, payload, len); return;  // ping: answer
        case 0xA: return;
        default: return error(c, "unknown opcode " + std::to_string(op));
        }
    }

    // ---- payloads ----

    std::uint64_t stamp() const { return now_ns() - start_ns_; }

    /// Appends one masked frame to the connection's output.
    void append_frame(connection& c, std::uint8_t op, const char* payload, std::size_t len) {
        char* p = frame_space(c, op, len);
        std::memcpy(p, payload, len);
        mask(p, len);
    }

    /// Appends a masked message in the benchmark's payload format.
    void append_payload(connection& c, std::uint32_t sender, std::uint64_t seq) {
        const std::uint8_t op = o_.binary ? 0x2 : 0x1;
        char* p = frame_space(c, op, o_.size);
        put_hex(p, sender, 8);
        put_hex(p + 8, seq, 16);
        put_hex(p + 24, stamp(), 16);
        std::memcpy(p + header_bytes, filler_.data() + seq % filler_offsets + header_bytes, o_.size - header_bytes);
        mask(p, o_.size);
    }

    /// Writes a frame header (with a fresh mask key, kept in mask_) and returns where the payload goes.
    char* frame_space(connection& c, std::uint8_t op, std::size_t len) {
        std::uint8_t h[14];
        std::size_t n = 0;
        h[n++] = static_cast<std::uint8_t>(0x80 | op);
        if (len < 126) {
            h[n++] = static_cast<std::uint8_t>(0x80 | len);
        } else if (len <= 0xffff) {
            h[n++] = 0x80 | 126;
            h[n++] = static_cast<std::uint8_t>(len >> 8);
            h[n++] = static_cast<std::uint8_t>(len);
        } else {
            h[n++] = 0x80 | 127;
            for (int i = 7; i >= 0; --i) h[n++] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(len) >> (i * 8));
        }
        const auto key = static_cast<std::uint32_t>(rng_.next());
        std::memcpy(h + n, &key, 4);
        n += 4;
        mask_ = key;
        if (c.out_off == c.out.size()) {
            c.out.clear();
            c.out_off = 0;
        }
        const std::size_t at = c.out.size();
        c.out.resize(at + n + len);
        std::memcpy(c.out.data() + at, h, n);
        mark_dirty(c);
        return c.out.data() + at + n;
    }

    /// XORs the payload with the mask key of the frame just started, eight bytes at a time.
    void mask(char* p, std::size_t len) const {
        const std::uint64_t k = (std::uint64_t{mask_} << 32) | mask_;
        std::size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            std::uint64_t v;
            std::memcpy(&v, p + i, 8);
            v ^= k;
            std::memcpy(p + i, &v, 8);
        }
        const auto* kb = reinterpret_cast<const std::uint8_t*>(&mask_);
        for (; i < len; ++i) p[i] = static_cast<char>(p[i] ^ kb[i % 4]);
    }

    /// Checks a received payload; returns its sender, sequence number and timestamp.
    bool check_payload(connection& c, std::uint8_t op, const char* p, std::size_t len, std::uint64_t& sender,
                       std::uint64_t& seq, std::uint64_t& sent) {
        if (op != (o_.binary ? 0x2 : 0x1)) {
            error(c, "wrong message type");
            return false;
        }
        if (len != o_.size) {
            error(c, "wrong length " + std::to_string(len) + ", expected " + std::to_string(o_.size));
            return false;
        }
        if (!get_hex(p, 8, sender) || !get_hex(p + 8, 16, seq) || !get_hex(p + 24, 16, sent)) {
            error(c, "corrupt payload header");
            return false;
        }
        if (std::memcmp(p + header_bytes, filler_.data() + seq % filler_offsets + header_bytes, len - header_bytes) != 0) {
            error(c, "corrupt payload content");
            return false;
        }
        return true;
    }

    /// A compressed message (no context takeover): inflated with the one inflater, reset each time.
    void on_compressed(connection& c, std::uint8_t op, const char* p, std::size_t len) {
        if (!inflater_ready_) {
            if (inflateInit2(&inflater_, -15) != Z_OK) return error(c, "inflateInit2 failed");
            inflater_ready_ = true;
        }
        inflated_.resize(o_.size + 64);
        static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        inflater_.next_out = reinterpret_cast<Bytef*>(inflated_.data());
        inflater_.avail_out = static_cast<uInt>(inflated_.size());
        int rc = Z_OK;
        for (const auto& [data, size] : {std::pair<const void*, std::size_t>{p, len}, {tail, sizeof tail}}) {
            inflater_.next_in = static_cast<Bytef*>(const_cast<void*>(data));
            inflater_.avail_in = static_cast<uInt>(size);
            rc = inflate(&inflater_, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) break;
        }
        const std::size_t n = inflated_.size() - inflater_.avail_out;
        inflateReset(&inflater_);
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return error(c, "corrupt compressed message");
        ++compressed_messages_;
        on_message(c, op, inflated_.data(), n);
    }

    void on_message(connection& c, std::uint8_t op, const char* p, std::size_t len) {
        std::uint64_t sender = 0, seq = 0, sent = 0;
        if (!check_payload(c, op, p, len, sender, seq, sent)) return;
        const std::uint64_t now = read_time_ - start_ns_;
        if (o_.scenario == scenario_kind::echo) {
            if (sender != c.id || seq != c.next_receive) {
                error(c, "echo out of order: got " + std::to_string(sender) + "/" + std::to_string(seq) + ", expected " +
                             std::to_string(c.id) + "/" + std::to_string(c.next_receive));
                return;
            }
            ++c.next_receive;
            c.last_progress = read_time_;
            record(now - sent);
            if (running_) send_echo(c);
            return;
        }
        // broadcast
        if (sender == probe_id) {
            if (seq < probe_receipts_.size()) ++probe_receipts_[seq];
            return;
        }
        if (sender >= pubs_.size() || seq != c.expected[sender]) {
            error(c, "broadcast out of order: got " + std::to_string(sender) + "/" + std::to_string(seq));
            return;
        }
        ++c.expected[sender];
        record(now - sent);
        publisher_state& pub = pubs_[sender];
        ++pub.receipts[seq % o_.window];
        bool advanced = false;
        while (pub.done < pub.next_send && pub.receipts[pub.done % o_.window] == conns_.size()) {
            pub.receipts[pub.done % o_.window] = 0;
            ++pub.done;
            pub.last_progress = read_time_;
            advanced = true;
        }
        if (advanced && running_) pump_publisher(sender);
    }

    void record(std::uint64_t latency) {
        ++messages_;
        latency_.add(latency);
    }

    void send_echo(connection& c) { append_payload(c, c.id, c.next_send++); }

    void pump_publisher(std::size_t p) {
        publisher_state& pub = pubs_[p];
        connection& c = conns_[p * (conns_.size() / pubs_.size())];  // publishers spread over the connections
        while (pub.next_send - pub.done < o_.window) append_payload(c, static_cast<std::uint32_t>(p), pub.next_send++);
    }

    /// Broadcast: every server adds a connection to its room a little after answering the handshake.
    /// Probe until one probe reached every connection, so that all of them are in the room.
    bool wait_for_joins() {
        connection& c = conns_[0];
        std::uint64_t next_probe = 0;
        for (;;) {
            for (std::size_t i = 0; i < probe_receipts_.size(); ++i)
                if (probe_receipts_[i] == conns_.size()) return true;
            const std::uint64_t now = now_ns();
            if (now >= next_probe) {
                probe_receipts_.push_back(0);
                append_payload(c, probe_id, probe_receipts_.size() - 1);
                flush(c);
                next_probe = now + 20'000'000;
            }
            if (!poll_once(next_probe)) return false;
            if (failed()) return false;
        }
    }

    // ---- measurement ----

    void begin_measurement() {
        measure_start_ = now_ns();
        messages_ = 0;
        latency_.clear();
        server_cpu_start_ = process_cpu_seconds(o_.server_pid);
        self_cpu_start_ = self_cpu_seconds();
        machine_start_ = machine_cpu_jiffies();
    }

    void end_measurement() {
        const std::uint64_t now = now_ns();
        measured_seconds_ = static_cast<double>(now - measure_start_) / 1e9;
        // A server that loses a message stalls that connection (echo) or that publisher (broadcast)
        // without any error on the wire: flag whatever made no progress for the last second.
        const std::uint64_t stalled_before = now - std::min<std::uint64_t>(now - measure_start_, 1'000'000'000);
        for (const auto& c : conns_)
            if (o_.scenario == scenario_kind::echo && c.last_progress < stalled_before)
                error(c, "stalled: no echo in the last second");
        for (std::size_t p = 0; p < pubs_.size(); ++p)
            if (pubs_[p].last_progress < stalled_before)
                error(conns_[p * (conns_.size() / pubs_.size())], "stalled: publisher " + std::to_string(p) + " made no progress in the last second");
        measured_messages_ = messages_;
        const double server_cpu = process_cpu_seconds(o_.server_pid);
        server_cpu_ = server_cpu >= 0 && server_cpu_start_ >= 0 ? (server_cpu - server_cpu_start_) / measured_seconds_ : -1;
        loadgen_cpu_ = (self_cpu_seconds() - self_cpu_start_) / measured_seconds_;
        const auto machine = machine_cpu_jiffies();
        const double busy_cores = (machine.first - machine_start_.first) / static_cast<double>(sysconf(_SC_CLK_TCK)) / measured_seconds_;
        if (server_cpu_ >= 0) other_cpu_ = busy_cores - server_cpu_ - loadgen_cpu_;
    }

    int run_idle() {
        // Let the server finish setting up every connection, keep watching for closes, then read RSS.
        const std::uint64_t until = now_ns() + static_cast<std::uint64_t>(o_.settle * 1e9);
        while (now_ns() < until) {
            if (!poll_once(until)) return finish(3);
            if (failed()) return finish(1);
        }
        rss_after_ = rss_kib(o_.server_pid);
        if (rss_after_ < 0 || rss_base_ < 0) {
            first_error_ = "cannot read /proc/" + std::to_string(o_.server_pid) + "/status";
            ++errors_;
            return finish(1);
        }
        return finish(0);
    }

    // ---- writing ----

    void mark_dirty(connection& c) {
        if (!c.dirty) {
            c.dirty = true;
            dirty_.push_back(&c);
        }
    }

    void flush_all() {
        // flush() never adds to the list, so iterating by index is safe.
        for (std::size_t i = 0; i < dirty_.size(); ++i) {
            connection& c = *dirty_[i];
            c.dirty = false;
            if (c.state != conn_state::closed) flush(c);
        }
        dirty_.clear();
    }

    void flush(connection& c) {
        while (c.out_off < c.out.size()) {
            const ssize_t n = send_some(c, c.out.data() + c.out_off, c.out.size() - c.out_off);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                error(c, std::string("write: ") + transport_error());
                close_connection(c);
                return;
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        const bool pending = c.out_off < c.out.size();
        if (!pending) {
            c.out.clear();
            c.out_off = 0;
        }
        if (pending != c.epollout) {
            epoll_event ev{};
            ev.events = EPOLLIN | (pending ? EPOLLOUT : 0u);
            ev.data.ptr = &c;
            epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
            c.epollout = pending;
        }
    }

    options o_;
    xorshift rng_{1};
    std::uint32_t mask_ = 0;
    std::string filler_;
    SSL_CTX* tls_ = nullptr;        // --tls
    std::string tls_negotiated_;    // version and cipher of the first connection
    z_stream inflater_{};
    bool inflater_ready_ = false;
    std::vector<char> inflated_;
    std::uint64_t compressed_messages_ = 0;  // how many arrived compressed (--deflate)
    int epfd_ = -1;
    std::vector<connection> conns_;
    std::vector<connection*> dirty_;
    std::vector<publisher_state> pubs_;
    std::vector<std::uint32_t> probe_receipts_;
    std::size_t opened_ = 0;
    bool running_ = false;

    std::uint64_t start_ns_ = 0;
    std::uint64_t hard_deadline_ = 0;
    std::uint64_t read_time_ = 0;
    std::uint64_t measure_start_ = 0;
    std::uint64_t messages_ = 0;
    std::uint64_t measured_messages_ = 0;
    double measured_seconds_ = 0;
    double connect_seconds_ = 0;
    histogram latency_;
    double server_cpu_start_ = -1, server_cpu_ = -1, self_cpu_start_ = 0, loadgen_cpu_ = 0;
    double other_cpu_ = -2;
    std::pair<double, double> machine_start_{0, 0};
    long rss_base_ = -1, rss_after_ = -1;

    std::size_t errors_ = 0;
    std::string first_error_;
};

}  // namespace

int main(int argc, char** argv) {
    load_generator generator(parse_options(argc, argv));
    return generator.run();
}
