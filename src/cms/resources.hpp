// The CMS resources the kit serves from their declarations (src/cms/resources.cpp); their rules beyond the
// declarations are hooks of the service (cms::Service).
//   const kit::Resource& types = kit.add(content_type_resource().hooks(service.type_hooks()));
#pragma once
#include "kit/resource.hpp"

namespace cdx::cms {

inline constexpr size_t kMaxEntryBytes = 1 << 20;  // an entry's data as JSON

kit::Resource locale_resource();
kit::Resource content_type_resource();
kit::Resource entry_resource(const kit::Resource& content_types);
kit::Resource media_resource();

}  // namespace cdx::cms
