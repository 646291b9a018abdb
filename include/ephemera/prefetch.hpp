// A cache-line prefetch that the optimiser keeps. GCC counts __builtin_prefetch as no side
// effect when it decides whether a function is pure (ipa-pure-const), so a function that only
// prefetches, such as a batch's "ask for these lines" pass, is taken for one without effect and
// every call to it is dropped. An asm volatile statement is never dropped, as DPDK's
// rte_prefetch0 relies on too.
#pragma once

namespace ephemera {

inline void prefetch(const void* p) {
#if defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const volatile char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

} // namespace ephemera
