// A module (crm) that includes another module's internals (auth's service): the build must refuse it.
#include "kit/kit.hpp"
#include "auth/service.hpp"

int main() { return 0; }
