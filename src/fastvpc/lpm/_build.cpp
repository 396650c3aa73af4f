// fastvpc.lpm._build: prefix sets -> packed LPM arrays (see _lpm_layout.h for the layout).
//
// One call builds any number of tables into one byte blob whose regions are 64-byte aligned
// (offsets are relative to the blob start; the Python side copies the blob into an aligned,
// append-only pool and rebases the offsets).  Small tables become a static B-tree over the
// table's intervals, big ones a poptrie with an 18-bit direct-pointing array.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "_lpm_layout.h"

namespace py = pybind11;

namespace {

using u8 = uint8_t;
using u32 = uint32_t;
using u64 = uint64_t;

std::string ip_str(u32 a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
           std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

std::string cidr_str(u32 a, unsigned len) { return ip_str(a) + "/" + std::to_string(len); }

inline u32 mask_of(unsigned len) { return len == 0 ? 0u : (0xFFFFFFFFu << (32 - len)); }

struct Blob {
    std::vector<u8> bytes;
    // Reserve `n` zeroed bytes at a 64-byte aligned offset; returns the offset.
    size_t alloc(size_t n) {
        size_t off = (bytes.size() + LPM_LINE - 1) / LPM_LINE * LPM_LINE;
        size_t end = (off + n + LPM_LINE - 1) / LPM_LINE * LPM_LINE;
        bytes.resize(end, 0);
        return off;
    }
    u8* at(size_t off) { return bytes.data() + off; }
};

// Flatten a (prefix, len)-sorted route list into intervals: starts[j] .. starts[j+1]-1 -> vals[j].
// Adjacent intervals of equal value are merged; starts[0] == 0 always.
void flatten(const u32* pfx, const u8* len, const u32* val, size_t n, std::vector<u32>& starts,
             std::vector<u32>& vals) {
    starts.clear();
    vals.clear();
    auto emit = [&](u64 x, u32 v) {
        if (x > 0xFFFFFFFFull) return;
        if (!starts.empty() && starts.back() == (u32)x) {
            starts.pop_back();
            vals.pop_back();
        }
        if (!vals.empty() && vals.back() == v) return;
        starts.push_back((u32)x);
        vals.push_back(v);
    };
    struct Open { u64 end; u32 val; };
    std::vector<Open> stack;
    emit(0, LPM_MISS);
    for (size_t i = 0; i < n; ++i) {
        u64 s = pfx[i];
        u64 e = s + ((u64)1 << (32 - len[i])) - 1;
        while (!stack.empty() && stack.back().end < s) {
            u64 end = stack.back().end;
            stack.pop_back();
            emit(end + 1, stack.empty() ? LPM_MISS : stack.back().val);
        }
        emit(s, val[i]);
        stack.push_back({e, val[i]});
    }
    while (!stack.empty()) {
        u64 end = stack.back().end;
        stack.pop_back();
        emit(end + 1, stack.empty() ? LPM_MISS : stack.back().val);
    }
}

inline int32_t key_of(u32 start) { return (int32_t)((start - 1u) ^ 0x80000000u); }

// Static B-tree over intervals; writes header words h[0..] and returns nothing.
void build_btree(const std::vector<u32>& S, const std::vector<u32>& V, Blob& blob, u32* h) {
    const size_t m = S.size();
    const size_t nleaf = (m + 7) / 8;
    // level sizes bottom-up
    std::vector<size_t> sizes{nleaf};
    while (sizes.back() > 1) sizes.push_back((sizes.back() + 16) / 17);
    const int d = (int)sizes.size() - 1;
    size_t total = 0;
    for (size_t s : sizes) total += s;
    size_t off = blob.alloc(total * LPM_LINE);
    h[0] = LPM_KIND_BTREE + (u32)d;
    // top-down placement: level l (0 = root) has sizes[d - l] nodes
    size_t line = off / LPM_LINE;
    std::vector<size_t> level_line(d + 1);
    for (int l = 0; l <= d; ++l) {
        level_line[l] = line;
        h[1 + l] = (u32)line;
        line += sizes[d - l];
    }
    // leaves
    std::vector<int32_t> first(nleaf);
    {
        int32_t* base = (int32_t*)blob.at(level_line[d] * LPM_LINE);
        for (size_t j = 0; j < nleaf; ++j) {
            int32_t* k = base + 16 * j;
            u32* v = (u32*)(k + 8);
            for (int i = 0; i < 8; ++i) {
                size_t iv = 8 * j + 1 + i;
                k[i] = (i < 7 && iv < m) ? key_of(S[iv]) : INT32_MAX;
                size_t vi = std::min(8 * j + i, m - 1);
                v[i] = V[vi];
            }
            first[j] = j == 0 ? INT32_MIN : key_of(S[8 * j]);
        }
    }
    // internal levels, bottom-up
    for (int l = d - 1; l >= 0; --l) {
        size_t nchild = sizes[d - l - 1], nnode = sizes[d - l];
        int32_t* base = (int32_t*)blob.at(level_line[l] * LPM_LINE);
        std::vector<int32_t> nfirst(nnode);
        for (size_t p = 0; p < nnode; ++p) {
            for (int c = 1; c <= 16; ++c) {
                size_t ch = 17 * p + c;
                base[16 * p + c - 1] = ch < nchild ? first[ch] : INT32_MAX;
            }
            nfirst[p] = first[17 * p];
        }
        first.swap(nfirst);
    }
}

struct PoptrieBuilder {
    const std::vector<u32>& S;
    const std::vector<u32>& I;  // interval ids
    std::vector<lpm_pt_node> nodes;
    std::vector<u32> leaves;

    PoptrieBuilder(const std::vector<u32>& s, const std::vector<u32>& ids) : S(s), I(ids) {}

    // Node covering widened addresses [lo, lo + (64 << sh)); j: interval containing lo >> 4.
    void build(size_t idx, u64 lo, int sh, size_t j) {
        const size_t m = S.size();
        u64 vector = 0, leafvec = 0;
        size_t jc[64];
        u32 base0 = (u32)leaves.size();
        bool have_leaf = false;
        u32 prev = 0;
        for (int c = 0; c < 64; ++c) {
            u64 cl = lo + ((u64)c << sh), ch = cl + ((u64)1 << sh) - 1;
            u64 al = cl >> 4, ah = ch >> 4;
            while (j + 1 < m && S[j + 1] <= al) ++j;
            jc[c] = j;
            bool uniform = (j + 1 == m) || S[j + 1] > ah;
            if (!uniform) {
                vector |= (u64)1 << c;
            } else {
                u32 id = I[j];
                if (!have_leaf || id != prev) {
                    leafvec |= (u64)1 << c;
                    leaves.push_back(id);
                    prev = id;
                    have_leaf = true;
                }
            }
        }
        u32 base1 = (u32)nodes.size();
        nodes.resize(nodes.size() + __builtin_popcountll(vector));
        nodes[idx] = lpm_pt_node{vector, leafvec, base0, base1};
        size_t k = 0;
        for (int c = 0; c < 64; ++c) {
            if (vector >> c & 1) {
                build(base1 + k, lo + ((u64)c << sh), sh - 6, jc[c]);
                ++k;
            }
        }
    }
};

void build_poptrie(const std::vector<u32>& S, const std::vector<u32>& V, Blob& blob, u32* h) {
    // value ids: 0 = miss, then the distinct values
    std::vector<u32> distinct(V);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    if (!distinct.empty() && distinct.back() == LPM_MISS) distinct.pop_back();
    std::vector<u32> I(V.size());
    for (size_t j = 0; j < V.size(); ++j) {
        I[j] = V[j] == LPM_MISS ? 0u
                                : 1u + (u32)(std::lower_bound(distinct.begin(), distinct.end(), V[j]) -
                                             distinct.begin());
    }
    const size_t ndp = (size_t)1 << LPM_DP_BITS;
    const int dp_shift = 32 - LPM_DP_BITS;
    std::vector<u32> dp(ndp);
    PoptrieBuilder pb(S, I);
    const size_t m = S.size();
    size_t j = 0;
    for (size_t b = 0; b < ndp; ++b) {
        u64 lo = (u64)b << dp_shift, hi = lo + ((u64)1 << dp_shift) - 1;
        while (j + 1 < m && S[j + 1] <= lo) ++j;
        bool uniform = (j + 1 == m) || S[j + 1] > hi;
        if (uniform) {
            dp[b] = LPM_LEAF_FLAG | I[j];
        } else {
            size_t idx = pb.nodes.size();
            pb.nodes.emplace_back();
            pb.build(idx, lo << 4, 12 + (18 - LPM_DP_BITS), j);
            dp[b] = (u32)idx;
        }
    }
    size_t o_dp = blob.alloc(ndp * 4);
    std::memcpy(blob.at(o_dp), dp.data(), ndp * 4);
    size_t o_nodes = blob.alloc(std::max<size_t>(1, pb.nodes.size()) * sizeof(lpm_pt_node));
    if (!pb.nodes.empty()) std::memcpy(blob.at(o_nodes), pb.nodes.data(), pb.nodes.size() * sizeof(lpm_pt_node));
    size_t o_leaves = blob.alloc(std::max<size_t>(1, pb.leaves.size()) * 4);
    if (!pb.leaves.empty()) std::memcpy(blob.at(o_leaves), pb.leaves.data(), pb.leaves.size() * 4);
    size_t o_vals = blob.alloc((distinct.size() + 1) * 4);
    u32* vt = (u32*)blob.at(o_vals);
    vt[0] = LPM_MISS;
    for (size_t i = 0; i < distinct.size(); ++i) vt[i + 1] = distinct[i];
    h[0] = LPM_KIND_POPTRIE;
    h[1] = (u32)(o_dp / LPM_LINE);
    h[2] = (u32)(o_nodes / LPM_LINE);
    h[3] = (u32)(o_leaves / LPM_LINE);
    h[4] = (u32)(o_vals / LPM_LINE);
}

// The route list of one table (kept for routes()/lookup_exact/covering/covered; lookups never
// read it), written at a 64-byte aligned offset which is returned.  Routes are ordered by
// (length, prefix); with k routes and nd distinct values (nd = 0: values stored raw):
//   uint32 prefix[k]
//   uint32 raw value[k]                  (nd == 0)  |  uint32 distinct value[nd]  (nd > 0, ascending)
//   uint32 length offsets[34]            (k > LPM_ROUTES_OFFSETS_ABOVE: routes of length m are
//                                         [off[m], off[m+1]); off[0] = 0, off[33] = k)
//   uint8/uint16 value index[k]          (nd > 0: uint8 when nd <= 256, else uint16)
//   uint8 length[k]                      (k <= LPM_ROUTES_OFFSETS_ABOVE)
// Values are indexed only when that is smaller (4 * nd + width * k < 4 * k).
// P, L, V: the table's routes sorted by (prefix, length); D, IX: scratch.
size_t write_routes(const std::vector<u32>& P, const std::vector<u8>& L, const std::vector<u32>& V, size_t k,
                    Blob& blob, size_t& nd_out, std::vector<u32>& D, std::vector<u32>& IX) {
    u32 off[34] = {0};
    for (size_t r = 0; r < k; ++r) ++off[L[r] + 1];
    for (int m = 1; m < 34; ++m) off[m] += off[m - 1];
    IX.resize(k);  // IX[j]: route at position j of the (length, prefix) order
    {
        u32 pos[33];
        std::memcpy(pos, off, sizeof(pos));
        for (size_t r = 0; r < k; ++r) IX[pos[L[r]]++] = (u32)r;
    }
    D.assign(V.begin(), V.begin() + k);
    std::sort(D.begin(), D.end());
    D.erase(std::unique(D.begin(), D.end()), D.end());
    size_t nd = D.size();
    size_t w = nd <= 256 ? 1 : nd <= 65536 ? 2 : 0;
    bool indexed = w != 0 && 4 * nd + w * k < 4 * k;
    if (!indexed) nd = 0;
    const bool offs = k > LPM_ROUTES_OFFSETS_ABOVE;
    size_t bytes = 4 * k + (indexed ? 4 * nd + w * k : 4 * k) + (offs ? 4 * 34 : k);
    size_t ro = blob.alloc(bytes);
    u32* pf = (u32*)blob.at(ro);
    u32* vv = pf + k;
    for (size_t j = 0; j < k; ++j) pf[j] = P[IX[j]];
    size_t at = ro + 4 * k;
    if (indexed) {
        std::memcpy(vv, D.data(), nd * 4);
        at += 4 * nd;
    } else {
        for (size_t j = 0; j < k; ++j) vv[j] = V[IX[j]];
        at += 4 * k;
    }
    if (offs) {
        std::memcpy(blob.at(at), off, sizeof(off));
        at += sizeof(off);
    }
    if (indexed) {
        u8* ix8 = blob.at(at);
        uint16_t* ix16 = (uint16_t*)blob.at(at);
        for (size_t j = 0; j < k; ++j) {
            size_t i = (size_t)(std::lower_bound(D.begin(), D.end(), V[IX[j]]) - D.begin());
            if (w == 1) ix8[j] = (u8)i; else ix16[j] = (uint16_t)i;
        }
        at += w * k;
    }
    if (!offs) {
        u8* ln = blob.at(at);
        for (size_t j = 0; j < k; ++j) ln[j] = L[IX[j]];
    }
    nd_out = nd;
    return ro;
}

template <typename T>
py::array_t<T> as_1d(const py::array& a, const char* name) {
    if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be one-dimensional");
    return py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
}

py::tuple build_tables(py::array_t<u32, py::array::c_style> table_id, py::array_t<u32, py::array::c_style> prefix,
                       py::array_t<u8, py::array::c_style> length, py::array_t<u32, py::array::c_style> value,
                       size_t n_tables, bool normalise, size_t max_btree_intervals) {
    const size_t n = (size_t)prefix.size();
    if (table_id.ndim() != 1 || prefix.ndim() != 1 || length.ndim() != 1 || value.ndim() != 1)
        throw py::value_error("table_id, prefix, length and value must be one-dimensional");
    if ((size_t)table_id.size() != n || (size_t)length.size() != n || (size_t)value.size() != n)
        throw py::value_error("table_id, prefix, length and value must have the same length, got " +
                              std::to_string(table_id.size()) + ", " + std::to_string(n) + ", " +
                              std::to_string(length.size()) + ", " + std::to_string(value.size()));
    if (n_tables >= ((size_t)1 << 26)) throw py::value_error("too many tables: " + std::to_string(n_tables));
    const u32* tid = table_id.data();
    const u32* pfx = prefix.data();
    const u8* len = length.data();
    const u32* val = value.data();

    std::vector<std::pair<u64, u32>> order(n);  // (key, value)
    {
        py::gil_scoped_release nogil;
        std::string err;
        for (size_t i = 0; i < n && err.empty(); ++i) {
            if (len[i] > 32) {
                err = "prefix length " + std::to_string(len[i]) + " > 32 at entry " + std::to_string(i) + " (" +
                      ip_str(pfx[i]) + ")";
                break;
            }
            if (tid[i] >= n_tables) {
                err = "table id " + std::to_string(tid[i]) + " out of range (n_tables=" + std::to_string(n_tables) +
                      ") at entry " + std::to_string(i);
                break;
            }
            if (val[i] == LPM_MISS) {
                err = "value 0xFFFFFFFF is reserved for 'no route' (LpmTable.miss) at entry " + std::to_string(i) +
                      " (" + cidr_str(pfx[i], len[i]) + ")";
                break;
            }
            u32 p = pfx[i];
            u32 mk = mask_of(len[i]);
            if (p & ~mk) {
                if (!normalise) {
                    err = "host bits set in " + cidr_str(p, len[i]) + " at entry " + std::to_string(i) +
                          (n_tables > 1 ? " of table " + std::to_string(tid[i]) : std::string()) +
                          " (network is " + cidr_str(p & mk, len[i]) + "; pass normalize=True to accept)";
                    break;
                }
                p &= mk;
            }
            order[i] = {((u64)tid[i] << 38) | ((u64)p << 6) | len[i], val[i]};
        }
        if (!err.empty()) {
            py::gil_scoped_acquire g;
            throw py::value_error(err);
        }
        std::sort(order.begin(), order.end());
        for (size_t i = 1; i < n; ++i) {
            if (order[i].first == order[i - 1].first) {
                u64 k = order[i].first;
                err = "duplicate prefix " + cidr_str((u32)(k >> 6), (unsigned)(k & 63)) +
                      (n_tables > 1 ? " in table " + std::to_string(k >> 38) : std::string());
                break;
            }
        }
        if (!err.empty()) {
            py::gil_scoped_acquire g;
            throw py::value_error(err);
        }
    }

    py::array_t<u32> header({(py::ssize_t)n_tables, (py::ssize_t)LPM_HDR_WORDS});
    py::array_t<int64_t> meta({(py::ssize_t)n_tables, (py::ssize_t)LPM_META_COLS});
    u32* H = header.mutable_data();
    int64_t* M = meta.mutable_data();
    std::memset(H, 0, n_tables * LPM_HDR_WORDS * sizeof(u32));
    std::memset(M, 0, n_tables * LPM_META_COLS * sizeof(int64_t));
    Blob blob;
    {
        py::gil_scoped_release nogil;
        std::vector<u32> P, V, S, IV, D, IX;
        std::vector<u8> L;
        size_t i = 0;
        while (i < n) {
            u64 t = order[i].first >> 38;
            size_t e = i;
            while (e < n && (order[e].first >> 38) == t) ++e;
            size_t k = e - i;
            P.resize(k); L.resize(k); V.resize(k);
            for (size_t r = 0; r < k; ++r) {
                u64 key = order[i + r].first;
                P[r] = (u32)(key >> 6);
                L[r] = (u8)(key & 63);
                V[r] = order[i + r].second;
            }
            flatten(P.data(), L.data(), V.data(), k, S, IV);
            size_t region = blob.alloc(0);
            u32* h = H + t * LPM_HDR_WORDS;
            if (S.size() <= max_btree_intervals && S.size() <= (size_t)8 * 17 * 17 * 17)
                build_btree(S, IV, blob, h);
            else
                build_poptrie(S, IV, blob, h);
            size_t nd = 0;
            size_t ro = write_routes(P, L, V, k, blob, nd, D, IX);
            size_t end = blob.alloc(0);
            int64_t* mt = M + t * LPM_META_COLS;
            mt[0] = (int64_t)region;
            mt[1] = (int64_t)(end - region);
            mt[2] = (int64_t)k;
            mt[3] = (int64_t)ro;
            mt[4] = (int64_t)nd;
            i = e;
        }
    }
    py::array_t<u8> out((py::ssize_t)blob.bytes.size());
    if (!blob.bytes.empty()) std::memcpy(out.mutable_data(), blob.bytes.data(), blob.bytes.size());
    return py::make_tuple(header, meta, out);
}

py::tuple intervals(py::array_t<u32, py::array::c_style> prefix, py::array_t<u8, py::array::c_style> length,
                    py::array_t<u32, py::array::c_style> value) {
    // The flattened interval list of one table already sorted by (prefix, length) (for tests/tools).
    const size_t n = (size_t)prefix.size();
    if ((size_t)length.size() != n || (size_t)value.size() != n)
        throw py::value_error("prefix, length and value must have the same length");
    std::vector<u32> S, V;
    flatten(prefix.data(), length.data(), value.data(), n, S, V);
    py::array_t<u32> s((py::ssize_t)S.size()), v((py::ssize_t)V.size());
    std::memcpy(s.mutable_data(), S.data(), S.size() * 4);
    std::memcpy(v.mutable_data(), V.data(), V.size() * 4);
    return py::make_tuple(s, v);
}

}  // namespace

PYBIND11_MODULE(_build, m) {
    m.doc() = "fastvpc.lpm builder: prefix sets -> packed arrays (C++17)";
    m.attr("MISS") = py::int_(LPM_MISS);
    m.attr("HDR_WORDS") = py::int_(LPM_HDR_WORDS);
    m.attr("KIND_EMPTY") = py::int_(LPM_KIND_EMPTY);
    m.attr("KIND_BTREE") = py::int_(LPM_KIND_BTREE);
    m.attr("KIND_POPTRIE") = py::int_(LPM_KIND_POPTRIE);
    m.attr("BTREE_MAX_INTERVALS") = py::int_(8 * 17 * 17 * 17);
    m.attr("META_COLS") = py::int_(LPM_META_COLS);
    m.attr("ROUTES_OFFSETS_ABOVE") = py::int_(LPM_ROUTES_OFFSETS_ABOVE);
    m.def("build_tables", &build_tables, py::arg("table_id"), py::arg("prefix"), py::arg("length"),
          py::arg("value"), py::arg("n_tables"), py::arg("normalize") = false,
          py::arg("max_btree_intervals") = 8 * 17 * 17 * 17,
          "Build n_tables tables; returns (header uint32[n_tables, 8], meta int64[n_tables, 5], blob uint8[]).\n"
          "meta rows: region offset, region bytes, route count, routes offset (bytes, relative to blob),\n"
          "distinct values of the route list (0: values stored raw).");
    m.def("intervals", &intervals, py::arg("prefix"), py::arg("length"), py::arg("value"),
          "Flatten one (prefix, length)-sorted route list into (starts, values) intervals.");
}
