#!/usr/bin/env python3
"""Writes the seed corpora in corpus/<target>/: valid examples from
protocols.md and the tests, plus edge cases. Run from fuzz/; the output is
checked in, so this only needs re-running to change the seeds."""
import io, os, struct, zipfile

def put(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

# index_page
put("index_page", "valid", '{"Path":"golang.org/x/text","Version":"v0.3.0","Timestamp":"2019-04-10T19:08:52.997264Z"}\n'
    '{"Path":"golang.org/x/mod","Version":"v0.1.0","Timestamp":"2019-04-10T19:08:52.997264Z"}\n')
put("index_page", "offset", '{"Path":"golang.org/x/text","Version":"v0.3.0","Timestamp":"2019-04-10T12:08:52.997264-07:00"}\r\n')
put("index_page", "bad_lines", '{"Path":"cache","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:52Z"}\n'
    'not json\n{"Path":"x.y/z","Version":"v1.0.0+bad","Timestamp":"2019-04-10T19:08:52Z"}\n'
    '{"Path":"x.y/z","Version":"v1.0.0","Timestamp":"yesterday"}\n\n   \n{}\n')

# notes
LATEST = ("go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n"
          "\u2014 sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n")
put("note_open", "sum_golang_org_latest", LATEST)
NEUMANN = ("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n"
           "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
put("note_open", "peter_neumann", NEUMANN)
put("note_open", "doubly_signed", NEUMANN +
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n")
put("note_open", "no_signature", "go.sum database tree\n1\nAAAA\n")
put("note_open", "bad_name", NEUMANN.replace("PeterNeumann", "Bad Name"))
put("note_open", "plain_text", "hello\n")

put("note_keys", "sum_golang_org", "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8")
put("note_keys", "peter_neumann_vkey", "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
put("note_keys", "peter_neumann_skey", "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
put("note_keys", "slash_name", "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6")
put("note_keys", "bad_length", "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
put("note_keys", "bad_algorithm", "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")

put("tree_note", "valid", "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n")
put("tree_note", "signed", LATEST)
put("tree_note", "leading_zero", "go.sum database tree\n0123\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n")
put("tree_note", "short_hash", "go.sum database tree\n5\nAAAA\n")

LOOKUP = ("52253027\n"
          "golang.org/x/tools v0.44.0 h1:UP4ajHPIcuMjT1GqzDWRlalUEoY+uzoZKnhOjbIPD2c=\n"
          "golang.org/x/tools v0.44.0/go.mod h1:KA0AfVErSdxRZIsOVipbv3rQhVXTnlU6UhKxHd1seDI=\n\n"
          "go.sum database tree\n52544510\n+TGlZfnTizQCJgyZR56QixD8+X4dd8Wefy8U1w6k0Ig=\n\n"
          "\u2014 sum.golang.org Az3grn6d1PSjcypDf9bfcFVU5fvJB7VkLc0MAbz8jqeQVnSbAj9pKcsB5dJt5VdswPDUtiFar5LPRBu+uEQAT1CDfAc=\n")
put("lookup_record", "x_tools", LOOKUP)
put("note_open", "lookup_body", LOOKUP)
put("lookup_record", "signed_id", "+5\na b h1:x\n\nrest")
put("lookup_record", "negative_id", "-1\na\n\n")
put("lookup_record", "no_blank", "1\na\n")

for i, p in enumerate(["tile/4/0/001", "tile/4/0/001.p/5", "tile/3/5/x123/x456/078", "tile/3/5/x123/x456/078.p/2",
                       "tile/1/0/x003/x057/500", "tile/3/5/123/456/078", "tile/3/-1/123/456/078",
                       "tile/1/data/x003/x057/500", "tile/8/0/x001/x234/067.p/1", "tile/30/63/999"]):
    put("tile_path", "path%d" % i, p)

# tile_hashes: [h, l, w, count] n index tree_n indexes... tree_hash tile bytes
def tile_seed(h, l, w, count, n, index, tree_n, indexes, data=b""):
    b = bytes([h, l & 0xFF, w, count]) + struct.pack("<qq", n, index) + struct.pack("<q", tree_n)
    for x in indexes:
        b += struct.pack("<q", x)
    return b + bytes(32) + data
put("tile_hashes", "one_record", tile_seed(8, 0, 1, 1, 0, 0, 1, [0], bytes(range(32))))
put("tile_hashes", "partial", tile_seed(2, 0, 3, 2, 0, 2, 7, [0, 5], bytes(range(256))))
put("tile_hashes", "level1", tile_seed(1, 1, 2, 3, 1, 3, 300, [2, 100, 297], bytes(1024)))

# tlog_proofs: t n th h proof...
put("tlog_proofs", "small", struct.pack("<qq", 7, 3) + bytes(64) + bytes(96))
put("tlog_proofs", "equal", struct.pack("<qq", 1, 1) + bytes(64))
put("tlog_proofs", "negative", struct.pack("<qq", -1, 5) + bytes(64) + bytes(32))

# module_zip
P = "example.com/m@v1.0.0/"
def zipbytes(entries, method=zipfile.ZIP_DEFLATED, zip64=False, comment=b""):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            if name.endswith("/"):
                info.external_attr = 0o40755 << 16
            with z.open(info, "w", force_zip64=zip64) as f:
                f.write(data)
        z.comment = comment
    return buf.getvalue()
SIMPLE = [(P + "go.mod", b"module example.com/m\n\ngo 1.13\n"),
          (P + "m.go", b"package m\n\nfunc Foo() int { return 42 }\n"),
          (P + "cmd/hello/hello.go", b"package main\n\nfunc main() {}\n")]
put("module_zip", "simple_deflated", zipbytes(SIMPLE))
put("module_zip", "simple_stored", zipbytes(SIMPLE, zipfile.ZIP_STORED))
put("module_zip", "zip64", zipbytes(SIMPLE, zip64=True))
put("module_zip", "with_dirs", zipbytes([(P, b""), (P + "d/", b""), (P + "d/a.go", b"package d\n")]))
put("module_zip", "collision", zipbytes([(P + "m.go", b"x"), (P + "M.GO", b"y"), (P + "k/a", b""), (P + "\u212a/b", b"")]))
put("module_zip", "file_and_dir", zipbytes([(P + "a.go", b"x"), (P + "a.go/b.go", b"y")]))
put("module_zip", "bad_names", zipbytes([("noprefix", b""), (P + "a/../b", b""), (P + "x'", b""), (P + "GO.MOD", b""), (P + "sub/go.mod", b"")]))
put("module_zip", "comment", zipbytes(SIMPLE[:1], comment=b"a comment"))
put("module_zip", "empty", zipbytes([]))
put("module_zip", "not_a_zip", b"PK\x05\x06" + bytes(18))

# info
put("info", "valid", 'v1.0.0\n{"Version":"v1.0.0","Time":"2019-04-10T19:08:52Z"}')
put("info", "no_time", 'v1.2.3\n{"Version":"v1.2.3"}')
put("info", "other_version", 'v1.0.0\n{"Version":"v1.0.1","Time":"2019-04-10T19:08:52Z"}')
put("info", "bad_time", 'v1.0.0\n{"Version":"v1.0.0","Time":"noon"}')
put("info", "array", 'v1.0.0\n[1,2]')

# module_path: path \n version
for i, (p, v) in enumerate([("golang.org/x/text", "v0.3.0"), ("github.com/GoogleCloudPlatform/omega", "v1.0.0"),
                            ("github.com/!google!cloud!platform/omega", "v1.0.0-RC1"), ("gopkg.in/yaml.v1", "v0.8.0"),
                            ("github.com/go-yaml/yaml/v2", "v2.1.5"), ("rsc.io/quote", "v17.0.0+incompatible"),
                            ("gopkg.in/check.v1", "v0.0.0-20160102150405-abcdef123456"), ("x.y/z~0", "v1"),
                            ("github.com/user/unicode/испытание", "v1.0.0"), ("x.y/com1.txt", "v0.0.0"),
                            ("x☺y", ""), ("", "")]):
    put("module_path", "case%d" % i, p + "\n" + v)

# semver: a \n b
vs = ["bad", "v1-alpha.beta.gamma", "v1.0.0-alpha.1", "v1.0.0-beta.11", "v1", "v1.2.3-456-789",
      "v1.2.3+meta-pre.sha.256a", "v1.2.99999999999999999", "v0.0.1-0.20060102150405-hash",
      "v2.3.0-pre.0.20060102150405-hash+incompatible", "v0.0.0--.0.20060102150405-hash", "v1.0.1-0.20060102150405-hash+metadata"]
for i in range(len(vs)):
    put("semver", "pair%d" % i, vs[i] + "\n" + vs[(i + 1) % len(vs)])

# pattern: globs \n target
for i, (g, t) in enumerate([("*/quote", "rsc.io/quote"), ("*/quo??", "rsc.io/quote"), ("rsc.io/", "rsc.io/quote/v3"),
                            ("*/*/*,,*/quote", "rsc.io/quote"), ("p,*/q", "n/o/p/q"), ("[a-z]*.io", "rsc.io/x"),
                            ("[", "x"), ("\\", "x"), ("[^a]", "b"), ("a[", "a")]):
    put("pattern", "case%d" % i, g + "\n" + t)

# config
with open("../sync.toml") as f:
    put("config", "shipped", f.read())
put("config", "minimal", '[upstream]\nproxy = "https://proxy.golang.org"\n\n[sumdb]\n'
    'key = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"\n\n[mirror]\noutput = "mirror"\n'
    '\n[filter]\ninclude = ["golang.org/x"]\n')
put("config", "unknown_key", '[prune]\nenabeld = true\n')
put("config", "bad_share", '[prune]\nmax_delete = "110%"\n')
put("config", "duration", '[upstream]\nindex_since = "7d"\n[mirror]\nworkers = 0\n')
