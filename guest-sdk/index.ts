/** pinbox/guest-sdk: act as a guest kernel against any host that speaks the pinbox protocol. */
export {};
