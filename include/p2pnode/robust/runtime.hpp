// The robust library's process-wide state, all of it: how many threads the rules may use and
// whether the float Gram may use Intel AMX. Both are atomics, safe to set from any thread;
// a rule reads them when it starts.
#pragma once

namespace p2p::robust {

// Threads the distance-based rules (Gram matrices, NNM) and the coordinate-wise rules may use
// for inputs large enough to pay for them; 1 (the default) keeps every rule on the calling
// thread, which is what nodes that share a machine want.
void set_threads(int threads);
int threads();

// The float Gram on Intel AMX: used when the CPU has AMX-INT8 and AVX-512, the kernel grants
// this process the tile state, the environment variable P2PNODE_NO_AMX is unset (or 0) and
// allow_amx(false) has not turned it off (the default is allowed).
bool amx_available();
void allow_amx(bool allowed);

}  // namespace p2p::robust
