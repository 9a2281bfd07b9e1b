/** Every handler of the public contract, with the middleware it is declared with. */
import { Layer } from "effect"
import { MiddlewareLive } from "../Middleware.js"
import { ConferenceHandlersLive } from "./conference.js"
import { CustomerHandlersLive } from "./customer.js"
import { HostHandlersLive } from "./host.js"
import { LiveHandlersLive } from "./live.js"
import { MediaHandlersLive } from "./media.js"
import { OnboardingHandlersLive } from "./onboarding.js"
import { SessionHandlersLive } from "./session.js"

export const HandlersLive = Layer.mergeAll(
  SessionHandlersLive,
  OnboardingHandlersLive,
  HostHandlersLive,
  CustomerHandlersLive,
  LiveHandlersLive,
  MediaHandlersLive,
  ConferenceHandlersLive,
  MiddlewareLive
)
