// A file of the http layer that includes a module: the build must refuse it (see CMakeLists.txt, layers).
#include "http/router.hpp"
#include "crm/module.hpp"

int main() { return 0; }
