// libFuzzer target: route matching (http/router.hpp). The fuzzer writes a route table (patterns as code
// declares them: static segments and up to four {parameters}, any method) and request paths (anything a
// client may send: empty and repeated slashes, a trailing slash, bytes of any kind). Each match is compared
// with a plain reading of the rules over the list of patterns: a path's segments follow its leading slash,
// one trailing slash is ignored; at each segment a static segment of that name wins, else a parameter takes
// the segment when it is not empty, else there is no route; HEAD falls back to GET; the Allow list names
// the methods of the path's routes, HEAD with GET, and OPTIONS.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "http/router.hpp"

namespace {

using namespace cdx::http;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "router_fuzz: %s\n", what);
  std::abort();
}

struct Pattern {
  Method method;
  std::vector<std::string> segments;  // "{…}" for a parameter
  const Route* route = nullptr;       // as the router added it
};

bool is_param(const std::string& s) { return s.size() >= 2 && s.front() == '{' && s.back() == '}'; }

const char* const kWords[] = {"api", "v1", "crm", "contacts", "me", "import", "{id}", "{key}", "x", "a.b"};

std::string segment(FuzzedDataProvider& in, bool for_pattern) {
  const uint8_t pick = in.ConsumeIntegral<uint8_t>();
  if (pick < 200 || for_pattern) return kWords[pick % std::size(kWords)];
  return in.ConsumeRandomLengthString(12);  // anything, slashes included
}

// The segments of a request path, by the rules above.
std::vector<std::string_view> path_segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty()) return out;
  if (path.front() == '/') path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (out.back().empty()) out.pop_back();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Router router;
  std::vector<Pattern> patterns;
  const size_t routes = in.ConsumeIntegralInRange<size_t>(1, 12);
  for (size_t i = 0; i < routes; ++i) {
    Pattern p{static_cast<Method>(in.ConsumeIntegralInRange<int>(0, kMethodCount - 2)), {}};
    const size_t n = in.ConsumeIntegralInRange<size_t>(0, 6);
    std::string text;
    for (size_t k = 0; k < n; ++k) {
      p.segments.push_back(segment(in, true));
      text += "/" + p.segments.back();
    }
    if (text.empty()) text = "/";
    size_t params = 0;
    for (const auto& s : p.segments) params += is_param(s);
    bool duplicate = false;
    for (const Pattern& q : patterns) {
      bool same = q.method == p.method && q.segments.size() == p.segments.size();
      for (size_t k = 0; same && k < p.segments.size(); ++k)
        same = is_param(q.segments[k]) ? is_param(p.segments[k]) : q.segments[k] == p.segments[k];
      duplicate = duplicate || same;
    }
    try {
      p.route = &router.add_sync(p.method, text, [](Context&) {}, {});
      require(params <= 4 && !duplicate, "a pattern the router should refuse was added");
      patterns.push_back(std::move(p));
    } catch (const std::invalid_argument&) {
      require(params > 4 || duplicate, "a good pattern was refused");
    }
  }

  while (in.remaining_bytes() > 0) {
    const auto method = static_cast<Method>(in.ConsumeIntegralInRange<int>(0, kMethodCount - 1));
    std::string path;
    const size_t n = in.ConsumeIntegralInRange<size_t>(0, 7);
    for (size_t k = 0; k < n; ++k)
      path += (in.ConsumeIntegral<uint8_t>() < 240 ? "/" : "//") + segment(in, false);
    if (in.ConsumeIntegral<uint8_t>() > 200) path += "/";

    std::array<std::string_view, 4> params{};
    const Match m = router.match(method, path, params);

    // The plain reading.
    const std::vector<std::string_view> segs = path_segments(path);
    std::vector<const Pattern*> candidates;
    for (const Pattern& p : patterns) candidates.push_back(&p);
    std::vector<std::string_view> expected_params;
    for (size_t i = 0; i < segs.size() && !candidates.empty(); ++i) {
      std::vector<const Pattern*> statics, variables;
      for (const Pattern* p : candidates) {
        if (p->segments.size() <= i) continue;
        if (is_param(p->segments[i]))
          variables.push_back(p);
        else if (p->segments[i] == segs[i])
          statics.push_back(p);
      }
      if (!statics.empty()) {
        candidates = statics;
      } else if (!variables.empty() && !segs[i].empty()) {
        candidates = variables;
        expected_params.push_back(segs[i]);
      } else {
        candidates.clear();
      }
    }
    std::vector<const Pattern*> here;
    for (const Pattern* p : candidates)
      if (p->segments.size() == segs.size()) here.push_back(p);

    if (m.path_found == here.empty()) {  // say what, before failing
      for (const Pattern& p : patterns) {
        std::fprintf(stderr, "route %s", std::string(method_name(p.method)).c_str());
        for (const auto& seg : p.segments) std::fprintf(stderr, " /%s", seg.c_str());
        std::fprintf(stderr, "\n");
      }
      std::fprintf(stderr, "path %s (%zu segments): found %d, allow %s, method %s\n", path.c_str(),
                   segs.size(), m.path_found, std::string(m.allow).c_str(),
                   std::string(method_name(method)).c_str());
    }
    require(m.path_found == !here.empty(), "the path is found, or not, against the rules");
    if (!m.path_found) {
      require(m.route == nullptr, "a route on a path not found");
      continue;
    }
    std::set<std::string> allow, expected_allow = {"OPTIONS"};
    for (std::string_view a = m.allow; !a.empty();) {
      const size_t comma = a.find(", ");
      allow.emplace(a.substr(0, comma));
      a = comma == std::string_view::npos ? std::string_view{} : a.substr(comma + 2);
    }
    const Pattern* wanted = nullptr;
    const Pattern* get = nullptr;
    for (const Pattern* p : here) {
      expected_allow.emplace(method_name(p->method));
      if (p->method == Method::kGet) expected_allow.emplace("HEAD"), get = p;
      if (p->method == method && method != Method::kOther) wanted = p;
    }
    if (method == Method::kHead && !wanted) wanted = get;
    require(allow == expected_allow, "the Allow list is not the path's methods");
    require(m.route == (wanted ? wanted->route : nullptr), "another route than the rules name");
    if (!m.route) continue;
    for (size_t k = 0; k < params.size(); ++k) {
      require(k < expected_params.size() ? params[k] == expected_params[k] : params[k].empty(),
              "path parameters are not the path's segments");
      if (!params[k].empty())
        require(params[k].data() >= path.data() &&
                    params[k].data() + params[k].size() <= path.data() + path.size(),
                "a path parameter points outside the path");
    }
  }
  return 0;
}
