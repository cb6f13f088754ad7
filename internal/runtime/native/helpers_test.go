package native

import "github.com/cove-sandbox/cove"

func defaultLimitsForTest() cove.Limits { return cove.DefaultLimits() }
