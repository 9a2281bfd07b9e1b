/**
 * Host-led conferences in the SDK: the host device leads and distributes a fresh group key per epoch over each
 * participant's secured call (ConferenceHost), customers take part with theirs (ConferenceMember), and both encrypt
 * and decrypt their media frames with SFrame under the current epoch (ConferenceKeys, ConferenceEpochs).
 */
export * from "./ConferenceEpochs.js"
export * from "./ConferenceHost.js"
export * from "./ConferenceKeys.js"
export * from "./ConferenceMember.js"
