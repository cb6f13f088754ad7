package cove

// Version is cove's release version.
const Version = "0.1.0-dev"
