// The device-side agent as a standalone (NativeAOT-publishable) program; `moelab agent` runs the same code.
return MoeLab.DeviceAgent.AgentMain.Run(args);
