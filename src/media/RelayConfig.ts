/**
 * How the relay's WebRtcTransports listen: on one local address, UDP and TCP (UDP preferred), optionally announcing
 * another address or host name to clients (behind NAT, in a container). The codecs every relay router routes are
 * fixed: Opus 48 kHz stereo and VP8, which every browser the apps support sends.
 */
import { Config, type ConfigError, Context, Layer, Option } from "effect"
import type { types } from "mediasoup"
import { isIP } from "node:net"

export interface RelaySettings {
  /** Local IP address the transports bind to. */
  readonly listenIp: string
  /** Address (IP or host name) put into ICE candidates instead of `listenIp`. */
  readonly announcedAddress: Option.Option<string>
}

export const RELAY_MEDIA_CODECS: ReadonlyArray<types.RouterRtpCodecCapability> = [
  { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 },
  { kind: "video", mimeType: "video/VP8", clockRate: 90000 }
]

export class RelayConfig extends Context.Tag("tessera/media/RelayConfig")<RelayConfig, RelaySettings>() {
  static readonly layer = (settings: RelaySettings): Layer.Layer<RelayConfig> => Layer.succeed(RelayConfig, settings)

  /** TESSERA_RTC_LISTEN_IP (default 127.0.0.1) and TESSERA_RTC_ANNOUNCED_ADDRESS (optional). */
  static readonly fromEnv: Layer.Layer<RelayConfig, ConfigError.ConfigError> = Layer.effect(
    RelayConfig,
    Config.all({
      listenIp: Config.string("TESSERA_RTC_LISTEN_IP").pipe(
        Config.withDefault("127.0.0.1"),
        Config.validate({ message: "must be an IPv4 or IPv6 address", validation: (ip) => isIP(ip) !== 0 })
      ),
      announcedAddress: Config.option(Config.nonEmptyString("TESSERA_RTC_ANNOUNCED_ADDRESS"))
    })
  )
}

/** The listen infos of every relay WebRtcTransport: UDP first (and preferred), TCP as the fallback. */
export const listenInfosOf = (settings: RelaySettings): Array<types.TransportListenInfo> =>
  (["udp", "tcp"] as const).map((protocol) => ({
    protocol,
    ip: settings.listenIp,
    ...Option.match(settings.announcedAddress, { onNone: () => ({}), onSome: (announcedAddress) => ({ announcedAddress }) })
  }))
