package rediscluster

// StartWith is Start with the binaries named, so a test can make a step fail.
var StartWith = start

// NodeArgs is nodeArgs, for a test that starts one node by hand.
var NodeArgs = nodeArgs
