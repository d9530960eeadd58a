// Typed failures of p2pnode. An expected outcome (a timeout, a message that did not come)
// is a value, not an exception; these are for inputs that cannot be used.
#pragma once

#include <stdexcept>
#include <string>

namespace p2p {

// A configuration file or a combination of settings that cannot be used. The message names
// the file, the line (when known) and the field.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Bytes received from a peer that do not form a valid message. Raised only at the decode
// boundary; the caller drops the message and counts it.
class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A file or socket operation failed. The message names the path or endpoint.
class IoError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace p2p
