//! PRM simulator (PartnerStack and Impartner flavours).
