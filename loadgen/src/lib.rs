//! Load generation and simulators.
