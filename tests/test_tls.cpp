// TLS set-up errors: listen() and reload_tls() name the file that is missing, unusable or whose key
// does not match its certificate; a failed reload keeps the certificate in use. Certificates are made
// here with OpenSSL, in a temporary directory (nothing committed that could expire).
#include <starling/app.hpp>
#include <starling/tls.hpp>

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

namespace fs = std::filesystem;

starling::task<> idle(starling::websocket&) { co_return; }

std::string error_of(auto&& action) {
    try {
        action();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A directory of its own, removed with the object.
struct scratch_dir {
    scratch_dir() {
        std::string pattern = (fs::temp_directory_path() / "starling-tls-unit-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~scratch_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    fs::path path;
};

/// A self-signed EC P-256 certificate and its key, written as PEM to `cert` and `key` (the key
/// encrypted with `password` if one is given).
void make_certificate(const std::string& cert, const std::string& key, const std::string& password = {}) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(pkey);
    std::unique_ptr<X509, decltype(&X509_free)> x509(X509_new(), X509_free);
    REQUIRE(x509);
    X509_set_version(x509.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x509.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x509.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(x509.get()), 24 * 3600);
    X509_set_pubkey(x509.get(), pkey.get());
    X509_NAME* name = X509_get_subject_name(x509.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("starling unit test"), -1, -1, 0);
    X509_set_issuer_name(x509.get(), name);
    REQUIRE(X509_sign(x509.get(), pkey.get(), EVP_sha256()) != 0);

    std::FILE* out = std::fopen(cert.c_str(), "w");
    REQUIRE(out);
    PEM_write_X509(out, x509.get());
    std::fclose(out);
    out = std::fopen(key.c_str(), "w");
    REQUIRE(out);
    if (password.empty()) {
        PEM_write_PrivateKey(out, pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
    } else {
        PEM_write_PrivateKey(out, pkey.get(), EVP_aes_256_cbc(), nullptr, 0, nullptr, const_cast<char*>(password.c_str()));
    }
    std::fclose(out);
}

starling::server_options tls_on_any_port(const std::string& cert, const std::string& key, const std::string& password = {}) {
    starling::server_options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.workers = 1;
    options.transport = starling::tls({.certificate_chain_file = cert, .private_key_file = key, .private_key_password = password});
    return options;
}

}  // namespace

TEST_CASE("listen() names a certificate or key file that is missing, unusable or does not match") {
    scratch_dir dir;
    make_certificate(dir.file("a.crt"), dir.file("a.key"));
    make_certificate(dir.file("b.crt"), dir.file("b.key"));
    {
        std::FILE* garbage = std::fopen(dir.file("garbage.crt").c_str(), "w");
        std::fputs("not a certificate\n", garbage);
        std::fclose(garbage);
    }
    const auto listen_error = [](const starling::server_options& options) {
        starling::app app;
        app.websocket("/ws", idle);
        return error_of([&] { app.start_in_background(options); });
    };

    std::string e = listen_error(tls_on_any_port(dir.file("missing.crt"), dir.file("a.key")));
    CHECK(contains(e, dir.file("missing.crt")));
    CHECK(contains(e, "cannot be read"));

    e = listen_error(tls_on_any_port(dir.file("a.crt"), dir.file("missing.key")));
    CHECK(contains(e, dir.file("missing.key")));

    e = listen_error(tls_on_any_port(dir.file("garbage.crt"), dir.file("a.key")));
    CHECK(contains(e, dir.file("garbage.crt")));
    CHECK(contains(e, "not usable"));

    e = listen_error(tls_on_any_port(dir.file("a.crt"), dir.file("b.key")));
    CHECK(contains(e, dir.file("b.key")));
    CHECK(contains(e, "does not match the certificate in '" + dir.file("a.crt") + "'"));

    e = listen_error(tls_on_any_port("", dir.file("a.key")));
    CHECK(contains(e, "certificate_chain_file"));

    CHECK(listen_error(tls_on_any_port(dir.file("a.crt"), dir.file("a.key"))) == "no error");
}

TEST_CASE("an encrypted key needs its password, and a wrong one is reported with the file") {
    scratch_dir dir;
    make_certificate(dir.file("c.crt"), dir.file("c.key"), "secret");
    {
        starling::app app;
        app.websocket("/ws", idle);
        CHECK(error_of([&] { app.start_in_background(tls_on_any_port(dir.file("c.crt"), dir.file("c.key"), "secret")); }) ==
              "no error");
    }
    for (const std::string wrong : {"", "guess"}) {
        starling::app app;
        app.websocket("/ws", idle);
        const std::string e = error_of([&] { app.start_in_background(tls_on_any_port(dir.file("c.crt"), dir.file("c.key"), wrong)); });
        CHECK(contains(e, dir.file("c.key")));
    }
}

TEST_CASE("a failed reload throws naming the file and keeps the certificate in use; a good one replaces it") {
    scratch_dir dir;
    make_certificate(dir.file("a.crt"), dir.file("a.key"));
    make_certificate(dir.file("b.crt"), dir.file("b.key"));
    fs::copy_file(dir.file("a.crt"), dir.file("served.crt"));
    fs::copy_file(dir.file("a.key"), dir.file("served.key"));

    starling::app app;
    app.websocket("/ws", idle);
    std::string logged;
    app.set_logger([&logged](starling::log_level level, std::string_view line) {
        if (level == starling::log_level::error) logged += std::string(line) + "\n";
    });
    starling::server_options options = tls_on_any_port(dir.file("served.crt"), dir.file("served.key"));
    auto* tls = dynamic_cast<starling::detail::tls_transport*>(options.transport.get());
    REQUIRE(tls != nullptr);
    app.add_listener(0);  // a plain port beside it: nothing to reload there
    app.start_in_background(options);
    REQUIRE(app.ports().size() == 2);
    CHECK(app.ports()[0] != app.ports()[1]);
    const auto first = tls->current();

    // The key no longer fits the certificate.
    fs::copy_file(dir.file("b.key"), dir.file("served.key"), fs::copy_options::overwrite_existing);
    const std::string e = error_of([&] { app.reload_tls(); });
    CHECK(contains(e, dir.file("served.key")));
    CHECK(contains(e, "does not match"));
    CHECK(contains(logged, dir.file("served.key")));
    CHECK(tls->current() == first);

    // Both files replaced: the next connections get a new context.
    fs::copy_file(dir.file("b.crt"), dir.file("served.crt"), fs::copy_options::overwrite_existing);
    CHECK(error_of([&] { app.reload_tls(); }) == "no error");
    CHECK(tls->current() != first);
    app.stop();
}

TEST_CASE("reload_tls() before listen() or without a TLS listener is a set-up mistake") {
    starling::app before;
    before.websocket("/ws", idle);
    CHECK(contains(error_of([&] { before.reload_tls(); }), "needs app.listen() first"));

    starling::app plain;
    plain.websocket("/ws", idle);
    starling::server_options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.workers = 1;
    plain.start_in_background(options);
    CHECK(contains(error_of([&] { plain.reload_tls(); }), "no TLS listener"));
    plain.stop();
}
